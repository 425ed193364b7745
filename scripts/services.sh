#!/usr/bin/env bash
# scripts/services.sh - make sure everything redpg's tests need is running.
#
# Idempotent: safe to run any number of times, from any directory.
#
#   bash scripts/services.sh                     # PostgreSQL + Redis + PgBouncer
#   bash scripts/services.sh postgres|redis|pgbouncer   # just one of them
#   bash scripts/services.sh stop-pgbouncer      # stop our PgBouncer (pidfile)
#   bash scripts/services.sh start-pgbouncer     # start it (same as `pgbouncer`)
#   bash scripts/services.sh restart-pgbouncer   # stop + start (tests use this
#                                                # to check reconnection)
#   bash scripts/services.sh status              # report, change nothing
#   bash scripts/services.sh browser             # install Chromium for the
#                                                # dashboard's browser test
#
# What "running" means:
#   PostgreSQL  127.0.0.1:5432 (Debian cluster `<version> main`)
#   Redis       127.0.0.1:6379 (throw-away: no RDB, no AOF); redis-sentinel
#               installed (not started: the topology tests start their own)
#   PgBouncer   127.0.0.1:6432, OUR OWN instance (not the Debian service),
#               config/log/pidfile/socket in $REDPG_PGBOUNCER_DIR
#               (default /tmp/redpg-pgbouncer), pool_mode=transaction,
#               [databases] * = host=127.0.0.1 port=5432, auth_type=trust.
#
# Missing packages are installed from Debian with apt-get (needs root or
# passwordless sudo). Meant for test/CI machines only (production: deploy/ and
# docker-compose.yml). If it had to install PostgreSQL itself (or CI=true and
# `select 1` as root fails), it puts trust lines for local connections at the
# top of pg_hba.conf (original kept as pg_hba.conf.redpg-orig) and creates a
# superuser role `root`, matching the reference CI machine.
#
# Overrides: REDPG_PGBOUNCER_DIR, REDPG_PGBOUNCER_PORT, REDPG_PG_PORT,
# REDPG_REDIS_PORT, REDPG_CHECK_USER (role used for checks, default root),
# REDPG_PGBOUNCER_USERS (extra user names for PgBouncer's auth_file).
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT="${REDPG_PG_PORT:-5432}"
REDIS_HOST=127.0.0.1
REDIS_PORT="${REDPG_REDIS_PORT:-6379}"
PGB_HOST=127.0.0.1
PGB_PORT="${REDPG_PGBOUNCER_PORT:-6432}"
PGB_DIR="${REDPG_PGBOUNCER_DIR:-/tmp/redpg-pgbouncer}"
PGB_INI="$PGB_DIR/pgbouncer.ini"
PGB_USERLIST="$PGB_DIR/userlist.txt"
PGB_PIDFILE="$PGB_DIR/pgbouncer.pid"
PGB_LOG="$PGB_DIR/pgbouncer.log"
# Role used to check that PostgreSQL / PgBouncer really answer queries.
CHECK_USER="${REDPG_CHECK_USER:-root}"
# The Debian package's own instance (we stop it if it squats on our port).
DEBIAN_PGB_PIDFILE=/var/run/postgresql/pgbouncer.pid

export DEBIAN_FRONTEND=noninteractive
export PGCONNECT_TIMEOUT=3

log() { printf '[services] %s\n' "$*"; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif have sudo && sudo -n true 2>/dev/null; then
		sudo -n "$@"
	else
		die "need root (or passwordless sudo) to run: $*"
	fi
}

APT_UPDATED=0
apt_install() {
	if [ "$APT_UPDATED" -eq 0 ]; then
		log "apt-get update"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q 9>&-
		APT_UPDATED=1
	fi
	log "apt-get install -y $*"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" 9>&-
}

# wait_for SECONDS CMD...: poll CMD every 0.2 s until it succeeds.
wait_for() {
	local secs=$1 i
	shift
	for ((i = 0; i < secs * 5; i++)); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.2
	done
	return 1
}

# tcp_open HOST PORT: true if something accepts TCP connections there.
tcp_open() {
	(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# ---------------------------------------------------------------- PostgreSQL

pg_ready() {
	have pg_isready && pg_isready -q -h "$PG_HOST" -p "$PG_PORT"
}

pg_query_ok() {
	psql -X -q -w -h "$PG_HOST" -p "$PG_PORT" -U "$CHECK_USER" -d postgres -Atc 'select 1' >/dev/null 2>&1
}

# First cluster version under /etc/postgresql that has a `main` cluster.
# (Directory names there are plain version numbers, so ls is fine.)
# shellcheck disable=SC2012
pg_version() {
	local v
	for v in $(ls /etc/postgresql 2>/dev/null | sort -V); do
		if [ -d "/etc/postgresql/$v/main" ]; then
			echo "$v"
			return 0
		fi
	done
	ls /etc/postgresql 2>/dev/null | sort -V | head -1
}

# Make sure the tests can log in as $CHECK_USER without a password, as on the
# reference CI machine (trust auth, superuser role). pg_hba.conf is only
# edited for a PostgreSQL this script just installed (or when CI=true): that
# is a throw-away test box. The role is created whenever it is missing.
pg_configure_for_tests() {
	local ver=$1 may_edit_hba=$2 hba
	hba="/etc/postgresql/$ver/main/pg_hba.conf"
	if [ "$may_edit_hba" -eq 1 ] && [ -f "$hba" ] && ! grep -q 'redpg scripts/services.sh' "$hba"; then
		log "postgres: trust auth for local connections in $hba (original kept as $hba.redpg-orig)"
		as_root cp -p "$hba" "$hba.redpg-orig"
		{
			echo '# added by redpg scripts/services.sh (throw-away test machine): trust local connections'
			echo 'local   all   all                  trust'
			echo 'host    all   all   127.0.0.1/32   trust'
			echo 'host    all   all   ::1/128        trust'
			as_root cat "$hba.redpg-orig"
		} | as_root tee "$hba" >/dev/null
		as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main reload 9>&-
		wait_for 5 pg_query_ok || true
	fi
	if ! pg_query_ok && [ "$(id -u)" -eq 0 ] && id postgres >/dev/null 2>&1; then
		log "postgres: creating superuser role $CHECK_USER"
		runuser -u postgres -- psql -X -q -p "$PG_PORT" -d postgres -v ON_ERROR_STOP=1 \
			-c "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$CHECK_USER') THEN CREATE ROLE \"$CHECK_USER\" SUPERUSER LOGIN; END IF; END\$\$;" 9>&- || true
	fi
}

ensure_postgres() {
	if pg_ready; then
		log "postgres: already running on $PG_HOST:$PG_PORT"
		return 0
	fi
	local installed=0 ver
	if [ -z "$(ls -A /etc/postgresql 2>/dev/null)" ] || ! have pg_ctlcluster; then
		log "postgres: not installed -> installing Debian package postgresql"
		apt_install postgresql
		installed=1
	fi
	ver=$(pg_version)
	[ -n "$ver" ] || die "postgres: no cluster under /etc/postgresql"
	if [ ! -d "/etc/postgresql/$ver/main" ]; then
		log "postgres: creating cluster $ver main"
		as_root pg_createcluster "$ver" main 9>&-
	fi
	if ! pg_ready; then
		log "postgres: starting cluster $ver main"
		# exit code 2 = "already running" (e.g. still starting up): just wait.
		as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start 9>&- || true
	fi
	if ! wait_for 30 pg_ready; then
		tail -n 30 "/var/log/postgresql/postgresql-$ver-main.log" >&2 2>/dev/null || true
		die "postgres: not ready on $PG_HOST:$PG_PORT after 30 s"
	fi
	if [ "$installed" -eq 1 ] || ! pg_query_ok; then
		if [ "$installed" -eq 1 ] || [ "${CI:-}" = true ]; then
			pg_configure_for_tests "$ver" 1
		else
			pg_configure_for_tests "$ver" 0
		fi
	fi
	if pg_query_ok; then
		log "postgres: started cluster $ver main on $PG_HOST:$PG_PORT"
	else
		log "postgres: started cluster $ver main on $PG_HOST:$PG_PORT (WARNING: 'select 1' as $CHECK_USER fails)"
	fi
}

# --------------------------------------------------------------------- Redis

redis_ok() {
	have redis-cli && [ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
}

# The topology tests (make test-topologies) start their own Sentinels; only
# the binary is needed, from the Debian package redis-sentinel.
ensure_redis_sentinel() {
	if have redis-sentinel; then
		return 0
	fi
	log "redis-sentinel: not installed -> installing Debian package redis-sentinel"
	apt_install redis-sentinel
}

ensure_redis() {
	if redis_ok; then
		log "redis: already running on $REDIS_HOST:$REDIS_PORT"
		return 0
	fi
	if ! have redis-server || ! have redis-cli; then
		log "redis: not installed -> installing Debian package redis-server"
		apt_install redis-server
		if redis_ok; then
			log "redis: installed; the Debian service is answering on $REDIS_HOST:$REDIS_PORT"
			return 0
		fi
	fi
	# Throw-away instance for tests: no persistence at all.
	redis-server --daemonize yes --bind "$REDIS_HOST" --port "$REDIS_PORT" \
		--save "" --appendonly no --dir /tmp \
		--logfile "/tmp/redpg-redis-$REDIS_PORT.log" 9>&-
	if ! wait_for 30 redis_ok; then
		tail -n 30 "/tmp/redpg-redis-$REDIS_PORT.log" >&2 2>/dev/null || true
		die "redis: no PONG from $REDIS_HOST:$REDIS_PORT after 30 s"
	fi
	log "redis: started redis-server on $REDIS_HOST:$REDIS_PORT (no persistence, log /tmp/redpg-redis-$REDIS_PORT.log)"
}

# ----------------------------------------------------------------- PgBouncer

pgb_bin() {
	if [ -x /usr/sbin/pgbouncer ]; then
		echo /usr/sbin/pgbouncer
	else
		command -v pgbouncer 2>/dev/null || true
	fi
}

# Unix user our PgBouncer runs as (it refuses to run as root).
pgb_user() {
	if [ "$(id -u)" -ne 0 ]; then
		id -un
	elif id postgres >/dev/null 2>&1; then
		echo postgres
	else
		echo nobody
	fi
}

pgb_works() {
	psql -X -q -w -h "$PGB_HOST" -p "$PGB_PORT" -U "$CHECK_USER" -d postgres -Atc 'select 1' >/dev/null 2>&1
}

pgb_admin_works() {
	psql -X -q -w -h "$PGB_HOST" -p "$PGB_PORT" -U "$CHECK_USER" -d pgbouncer -c 'SHOW VERSION' >/dev/null 2>&1
}

# pid_alive PID: the process exists and is a pgbouncer (a stale pidfile
# whose pid was reused by something else must never get that process killed).
pid_alive() {
	[ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
	! proc_gone "$1" || return 1 # a killed pgbouncer nobody reaped is a zombie
	if [ -r "/proc/$1/comm" ]; then
		[ "$(cat "/proc/$1/comm" 2>/dev/null)" = pgbouncer ]
	fi
}

# pgb_pid: pid of OUR pgbouncer: from the pidfile, or else the pgbouncer
# process whose command line names our config file (pidfile lost).
read_pidfile() {
	if [ -f "$1" ]; then tr -dc '0-9' <"$1"; fi
}

# proc_gone PID: the process has exited (a zombie waiting for a parent that
# never reaps it - e.g. a minimal container init - counts as gone).
proc_gone() {
	kill -0 "$1" 2>/dev/null || return 0
	[ -r "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]
}

port_closed() {
	! tcp_open "$PGB_HOST" "$PGB_PORT"
}

pgb_pid() {
	local pid p
	pid=$(read_pidfile "$PGB_PIDFILE")
	if pid_alive "$pid"; then
		echo "$pid"
		return 0
	fi
	if have pgrep; then
		for p in $(pgrep -x pgbouncer 2>/dev/null || true); do
			if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "$PGB_INI"; then
				echo "$p"
				return 0
			fi
		done
	fi
	echo "$pid"
}

write_pgbouncer_config() {
	local runas users u
	runas=$(pgb_user)
	mkdir -p "$PGB_DIR"
	# auth_type=trust still requires the user name to be listed in auth_file.
	users="root postgres $(id -un) ${REDPG_PGBOUNCER_USERS:-}"
	: >"$PGB_USERLIST"
	# shellcheck disable=SC2086 # $users is a blank-separated list
	for u in $(printf '%s\n' $users | awk '!seen[$0]++'); do
		printf '"%s" ""\n' "$u" >>"$PGB_USERLIST"
	done
	cat >"$PGB_INI" <<EOF
; Generated by scripts/services.sh - TEST instance of PgBouncer for redpg.
; Do not edit: rewritten on every start. Production config: deploy/pgbouncer/.

[databases]
; wildcard: any database name (redpg_test, orders_pipeline, postgres, ...)
; is forwarded to the local PostgreSQL, logging in as the client's user.
* = host=$PG_HOST port=$PG_PORT

[pgbouncer]
listen_addr = $PGB_HOST
listen_port = $PGB_PORT
unix_socket_dir = $PGB_DIR
listen_backlog = 1024

; No password: PostgreSQL itself trusts local connections on test machines.
; "trust" still requires the user to be listed in auth_file.
auth_type = trust
auth_file = $PGB_USERLIST
admin_users = root, postgres
stats_users = root, postgres

pool_mode = transaction
max_client_conn = 800
default_pool_size = 25
min_pool_size = 0
reserve_pool_size = 0
server_reset_query =
ignore_startup_parameters = extra_float_digits,search_path

; Come back fast after PostgreSQL restarts (default is 15 s).
server_login_retry = 1

logfile = $PGB_LOG
pidfile = $PGB_PIDFILE
log_connections = 0
log_disconnections = 0
EOF
	chmod 700 "$PGB_DIR"
	chmod 600 "$PGB_INI" "$PGB_USERLIST"
	if [ "$(id -u)" -eq 0 ]; then
		chown -R "$runas" "$PGB_DIR"
	fi
}

stop_debian_pgbouncer() {
	local pid
	pid=$(read_pidfile "$DEBIAN_PGB_PIDFILE")
	if pid_alive "$pid"; then
		log "pgbouncer: stopping the Debian pgbouncer service (pid $pid), we run our own instance"
		as_root kill -TERM "$pid" || true
		wait_for 10 proc_gone "$pid" || as_root kill -KILL "$pid" || true
		return 0
	fi
	return 1
}

stop_pgbouncer() {
	local pid
	pid=$(pgb_pid)
	if ! pid_alive "$pid"; then
		rm -f "$PGB_PIDFILE"
		log "pgbouncer: own instance not running (no live pid in $PGB_PIDFILE)"
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || true # SIGTERM = immediate shutdown
	if ! wait_for 10 proc_gone "$pid"; then
		kill -KILL "$pid" 2>/dev/null || true
		sleep 0.2
	fi
	rm -f "$PGB_PIDFILE"
	wait_for 5 port_closed || true
	log "pgbouncer: stopped (pid $pid)"
}

start_pgbouncer() {
	local bin runas nofile
	bin=$(pgb_bin)
	[ -n "$bin" ] || die "pgbouncer: binary not found"
	write_pgbouncer_config
	runas=$(pgb_user)
	# A pgbouncer killed without a chance to clean up (CI ends every process
	# a session left running) leaves its pidfile, and a new one refuses to
	# start while it exists.
	if [ -f "$PGB_PIDFILE" ] && ! pid_alive "$(read_pidfile "$PGB_PIDFILE")"; then
		log "pgbouncer: removing stale pidfile $PGB_PIDFILE"
		rm -f "$PGB_PIDFILE"
	fi
	(
		# 800 clients + server connections need more than the usual 1024 fds.
		nofile=$(ulimit -n)
		if [ "$nofile" != unlimited ] && [ "$nofile" -lt 4096 ]; then
			ulimit -n 4096 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
		fi
		if [ "$(id -u)" -eq 0 ]; then
			exec "$bin" -d -u "$runas" "$PGB_INI"
		else
			exec "$bin" -d "$PGB_INI"
		fi
	) 9>&-
	if ! wait_for 30 pgb_works; then
		tail -n 30 "$PGB_LOG" >&2 2>/dev/null || true
		die "pgbouncer: 'select 1' through $PGB_HOST:$PGB_PORT as $CHECK_USER still fails after 30 s (log $PGB_LOG)"
	fi
	log "pgbouncer: started own instance on $PGB_HOST:$PGB_PORT as user $runas (pid $(pgb_pid), config $PGB_INI, log $PGB_LOG)"
}

# The dashboard's browser test (internal/web) drives headless Chromium;
# chromium-driver comes along for WebDriver-based tests.
ensure_browser() {
	if have chromium && have chromedriver; then
		log "browser: chromium and chromedriver are installed"
		return 0
	fi
	log "browser: not installed -> installing Debian packages chromium chromium-driver"
	apt_install chromium chromium-driver
}

ensure_pgbouncer() {
	if [ -z "$(pgb_bin)" ]; then
		log "pgbouncer: not installed -> installing Debian package pgbouncer"
		apt_install pgbouncer
		# Do not let the Debian service (if the install started it) take 6432.
		stop_debian_pgbouncer || true
	fi
	if tcp_open "$PGB_HOST" "$PGB_PORT"; then
		if pgb_works; then
			if pid_alive "$(pgb_pid)"; then
				log "pgbouncer: already running on $PGB_HOST:$PGB_PORT (own instance, pid $(pgb_pid))"
			else
				log "pgbouncer: something already answers on $PGB_HOST:$PGB_PORT and 'select 1' works; leaving it alone"
			fi
			if ! pgb_admin_works; then
				log "pgbouncer: WARNING: admin console (psql -U $CHECK_USER pgbouncer) is not available on it"
			fi
			return 0
		fi
		# Listening but useless for us: replace it if it is ours or Debian's.
		if pid_alive "$(pgb_pid)"; then
			log "pgbouncer: own instance answers but 'select 1' fails; restarting it"
			stop_pgbouncer
		elif ! stop_debian_pgbouncer; then
			die "pgbouncer: something else listens on $PGB_HOST:$PGB_PORT and 'select 1' as $CHECK_USER through it fails"
		fi
		wait_for 5 port_closed || true
	fi
	start_pgbouncer
}

status() {
	local rc=0
	if pg_ready; then log "postgres: up on $PG_HOST:$PG_PORT"; else log "postgres: DOWN"; rc=1; fi
	if redis_ok; then log "redis: up on $REDIS_HOST:$REDIS_PORT"; else log "redis: DOWN"; rc=1; fi
	if pgb_works; then
		log "pgbouncer: up on $PGB_HOST:$PGB_PORT (own pid: $(pgb_pid))"
	else
		log "pgbouncer: DOWN (or 'select 1' fails)"
		rc=1
	fi
	return "$rc"
}

usage() {
	# the header comment, up to the first non-comment line
	awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
}

# Serialise concurrent runs (e.g. several test packages restarting PgBouncer).
# Daemons are started with `9>&-` so they do not inherit (and hold) the lock.
if have flock; then
	exec 9>"${PGB_DIR%/}.lock"
	flock -w 300 9 || die "could not lock ${PGB_DIR%/}.lock within 300 s"
fi

cmd="${1:-all}"
case "$cmd" in
all | up | start)
	ensure_postgres
	ensure_redis
	ensure_redis_sentinel
	ensure_pgbouncer
	ensure_browser
	;;
browser) ensure_browser ;;
postgres) ensure_postgres ;;
redis)
	ensure_redis
	ensure_redis_sentinel
	;;
pgbouncer | start-pgbouncer) ensure_pgbouncer ;;
stop-pgbouncer) stop_pgbouncer ;;
restart-pgbouncer)
	stop_pgbouncer
	if tcp_open "$PGB_HOST" "$PGB_PORT"; then
		die "pgbouncer: cannot restart: something not started by this script (no pid for $PGB_INI) still answers on $PGB_HOST:$PGB_PORT"
	fi
	ensure_pgbouncer
	;;
status) status ;;
-h | --help | help) usage ;;
*)
	usage >&2
	exit 2
	;;
esac
