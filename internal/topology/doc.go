// Package topology holds redpg's tests on Redis deployments larger than one
// server: a Redis Cluster of three masters and three replicas, and a master
// and replica watched by three Sentinels. Each test starts its own servers
// from the Debian packages (redis-server, redis-cli, redis-sentinel) on free
// ports under a temporary directory, fails a master over while the pipeline
// runs, and removes every process and file when it ends. The package has no
// code of its own, only tests, behind the build tag topology:
//
//	make test-topologies
//	go test -tags topology -race -count=1 -p 1 ./internal/topology/
//
// docs/SCALING.md says what an asynchronous failover can lose and what
// reconcile then reports; the tests assert exactly that.
package topology
