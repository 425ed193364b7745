// Package chaos holds redpg's fault-injection tests: they prove that no
// order is lost, none is promoted twice and none disappears silently when
// workers are SIGKILLed at random moments or at precise crash points, when
// PostgreSQL, Redis or PgBouncer restart under load, and when the input is
// poisonous. The package has no code of its own, only tests.
//
// The disruptive tests carry the build tag chaos and run after the ordinary
// suite, one package at a time:
//
//	go test -tags chaos -count=1 -p 1 -timeout 10m ./internal/chaos/
//
// They start their own throw-away redis-server and pgbouncer on free ports,
// but the PostgreSQL restart test restarts the shared local cluster, so
// never run them alongside other tests. The poison-input tests carry no tag:
// they disturb nothing and run with the ordinary suite too.
//
// docs/RELIABILITY.md maps every guarantee to the test that proves it.
package chaos
