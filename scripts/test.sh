#!/usr/bin/env bash
# scripts/test.sh: the one test command. It makes sure PostgreSQL
# (127.0.0.1:5432, trust auth for user postgres, database "test") and Redis
# (127.0.0.1:6379) answer, starting or installing them when needed, then runs
# gofmt, go vet and the whole test suite with the race detector, with the
# service-backed tests required rather than skipped. It also installs
# Debian's chromium when missing, for the dashboard's headless browser test,
# and redis-server and redis-cli, for the quota store's Redis Cluster test,
# and (best-effort) nginx-light, for the benchmark harness's nginx yardstick.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PG_PORT=5432
REDIS_PORT=6379

log() { echo "test.sh: $*" >&2; }
die() {
	log "$*"
	exit 1
}

if ! command -v go >/dev/null 2>&1; then
	[[ -x /usr/local/go/bin/go ]] || die "go not found (looked on PATH and in /usr/local/go/bin)"
	PATH=/usr/local/go/bin:$PATH
fi

# as_root CMD...: runs CMD as root (directly, or with sudo -n).
as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo -n "$@"
	else
		die "need root to run: $*"
	fi
}

# as_postgres CMD...: runs CMD as the postgres OS user.
as_postgres() {
	if [[ $(id -un) == postgres ]]; then
		"$@"
	elif [[ $(id -u) -eq 0 ]]; then
		if command -v runuser >/dev/null 2>&1; then
			runuser -u postgres -- "$@"
		else
			su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
		fi
	else
		sudo -n -u postgres "$@"
	fi
}

# port_open PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
	timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

pg_up() {
	if command -v pg_isready >/dev/null 2>&1; then
		pg_isready -q -h 127.0.0.1 -p "$PG_PORT"
	else
		port_open "$PG_PORT"
	fi
}

redis_up() {
	if command -v redis-cli >/dev/null 2>&1; then
		[[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]
	else
		port_open "$REDIS_PORT"
	fi
}

# wait_for NAME CHECK: polls CHECK for up to 60 s.
wait_for() {
	local name=$1 check=$2 i
	for ((i = 0; i < 120; i++)); do
		"$check" && return 0
		sleep 0.5
	done
	die "$name did not answer on 127.0.0.1 within 60 s"
}

APT_UPDATED=0
apt_install() {
	command -v apt-get >/dev/null 2>&1 || die "cannot install $* (no apt-get); install it and re-run"
	log "installing $*"
	if [[ $APT_UPDATED == 0 ]]; then
		as_root apt-get update -q
		APT_UPDATED=1
	fi
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

pg_version() {
	find /etc/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null | sort -V | tail -n 1
}

start_postgres() {
	local ver
	ver=$(pg_version)
	[[ -n $ver ]] || die "no PostgreSQL cluster under /etc/postgresql"
	log "starting PostgreSQL $ver (cluster main)"
	as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
}

ensure_postgres() {
	if pg_up; then
		log "PostgreSQL is reachable on 127.0.0.1:$PG_PORT"
	else
		if [[ -z $(pg_version) ]] || ! command -v pg_ctlcluster >/dev/null 2>&1; then
			apt_install postgresql
		fi
		start_postgres
		wait_for PostgreSQL pg_up
	fi
	command -v psql >/dev/null 2>&1 || apt_install postgresql-client
	# Trust auth for postgres on loopback: add it to the local cluster if missing.
	if ! psql -w -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1; then
		local ver hba
		ver=$(pg_version)
		hba=/etc/postgresql/$ver/main/pg_hba.conf
		[[ -n $ver && -f $hba ]] || die "cannot connect to PostgreSQL as postgres without a password, and no local pg_hba.conf to fix"
		log "allowing trust auth for postgres on 127.0.0.1 and ::1 in $hba"
		as_root sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
		as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main reload
		sleep 1
		psql -w -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAc 'select 1' >/dev/null ||
			die "still cannot connect to PostgreSQL as postgres on 127.0.0.1"
	fi
	if [[ $(psql -w -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAc "select 1 from pg_database where datname = 'test'") != 1 ]]; then
		log "creating database test"
		psql -w -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c 'create database test' >/dev/null ||
			as_postgres psql -c 'create database test' >/dev/null ||
			die "could not create database test"
	fi
}

ensure_redis() {
	# quota/redis_cluster_test.go starts a Redis Cluster of its own with
	# redis-server and redis-cli (Debian: redis-server, redis-tools), even
	# when a Redis already answers on $REDIS_PORT.
	if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
		apt_install redis-server redis-tools
	fi
	if redis_up; then
		log "Redis is reachable on 127.0.0.1:$REDIS_PORT"
		return
	fi
	log "starting Redis"
	as_root mkdir -p /var/lib/redis /var/log/redis
	as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
		--save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
	wait_for Redis redis_up
}

# ensure_chromium installs Debian's chromium for the dashboard's browser
# test (web/ui_test.go drives it over the DevTools protocol; no Node needed).
ensure_chromium() {
	if [[ -x /usr/bin/chromium ]]; then
		log "chromium is installed"
		return
	fi
	apt_install chromium
	[[ -x /usr/bin/chromium ]] || die "chromium was installed but /usr/bin/chromium is missing"
}

# ensure_nginx installs Debian's nginx-light for the benchmark harness
# (cmd/sluice-bench measures nginx as a plain proxy beside sluice; its test
# requires it with SLUICE_REQUIRE_SERVICES=1). Best-effort: a failed install
# only warns here, and the harness test then says what is missing.
ensure_nginx() {
	if command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]]; then
		log "nginx is installed"
		return
	fi
	(apt_install nginx-light) || log "warning: could not install nginx-light; the sluice-bench nginx test will fail"
}

# ensure_node installs Node.js and npm for the official-SDK test
# (e2e/node, the openai npm package) when the machine lacks them.
ensure_node() {
	if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
		log "node $(node --version) is installed"
		return
	fi
	apt_install nodejs npm
	command -v node >/dev/null 2>&1 || die "nodejs was installed but node is missing"
}

ensure_postgres
ensure_redis
ensure_chromium
ensure_nginx
ensure_node

export SLUICE_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/test?sslmode=disable"
export SLUICE_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export SLUICE_REQUIRE_SERVICES=1

log "gofmt"
unformatted=$(find . \( -name .git -o -name node_modules -o -name testdata -o -name vendor \) -prune -o \
	-name '*.go' -type f -print0 | xargs -0 -r gofmt -l)
if [[ -n $unformatted ]]; then
	echo "$unformatted" >&2
	die "gofmt: the files above need formatting (run gofmt -w)"
fi

log "go vet ./..."
go vet ./...

# staticcheck, pinned; fetched through the Go module proxy on first use.
log "staticcheck ./..."
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

log "go test -race -count=1 -timeout 15m ./..."
go test -race -count=1 -timeout 15m ./...
log "all passed"
