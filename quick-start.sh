#!/usr/bin/env bash
# quick-start.sh: build Sluice and a mock provider, start both in the
# background with SQLite in ./data, seed a demo provider, models and key, and
# print how to use them. Safe to re-run: what is running stays running and
# what is seeded is reused.
#
#   ./quick-start.sh          start (or check) everything and print the details
#   ./quick-start.sh --stop   stop what this script started
#   ./quick-start.sh --help
#
# Environment: MOCK_PORT (default 8000), SLUICE_LISTEN (default :9080),
# SLUICE_ADMIN_LISTEN (default 127.0.0.1:9180), SLUICE_ADMIN_KEY (default: one
# generated once and kept in .quickstart/admin.key), DATABASE_URL (default
# empty: SQLite in ./data), REDIS_URL (default empty: in-process quotas).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT=$(pwd)
STATE="$ROOT/.quickstart"
BIN="$ROOT/bin"

MOCK_PORT=${MOCK_PORT:-8000}
SLUICE_LISTEN=${SLUICE_LISTEN:-:9080}
SLUICE_ADMIN_LISTEN=${SLUICE_ADMIN_LISTEN:-127.0.0.1:9180}
MOCK_KEY=mock-key

usage() {
	sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

die() {
	echo "quick-start: $*" >&2
	exit 1
}

# hostport LISTEN prints a host:port to reach a listen address from here.
hostport() {
	local listen=$1 host port
	port=${listen##*:}
	host=${listen%:*}
	case "$host" in
	"" | 0.0.0.0 | "[::]" | "::") host=127.0.0.1 ;;
	esac
	printf '%s:%s' "$host" "$port"
}

MOCK_ADDR=127.0.0.1:$MOCK_PORT
PROXY_ADDR=$(hostport "$SLUICE_LISTEN")
ADMIN_ADDR=$(hostport "$SLUICE_ADMIN_LISTEN")

# alive NAME: true when .quickstart/NAME.pid names a running NAME process.
alive() {
	local pidfile="$STATE/$1.pid" pid comm
	[[ -f $pidfile ]] || return 1
	pid=$(cat "$pidfile")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	comm=$(ps -p "$pid" -o comm= 2>/dev/null || true)
	[[ $comm == "$1"* ]]
}

stop_one() {
	local name=$1 pid i
	if alive "$name"; then
		pid=$(cat "$STATE/$name.pid")
		echo "stopping $name (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			kill -KILL "$pid" 2>/dev/null || true
		fi
	else
		echo "$name is not running (from this script)"
	fi
	rm -f "$STATE/$name.pid"
}

# http_code URL [curl args...]: prints the status code, 000 when unreachable.
http_code() {
	local url=$1
	shift
	curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" "$url" 2>/dev/null || true
}

# wait_healthy NAME URL: waits up to 30 s for URL to answer 200.
wait_healthy() {
	local name=$1 url=$2 i
	for ((i = 0; i < 150; i++)); do
		if [[ $(http_code "$url") == 200 ]]; then
			return 0
		fi
		if [[ -f "$STATE/$name.pid" ]] && ! alive "$name"; then
			echo "quick-start: $name exited; last lines of $STATE/$name.log:" >&2
			tail -n 20 "$STATE/$name.log" >&2 || true
			exit 1
		fi
		sleep 0.2
	done
	echo "quick-start: $name did not answer $url within 30 s; see $STATE/$name.log" >&2
	exit 1
}

# admin_post PATH JSON: POSTs to the admin API; prints "<status> <body>".
admin_post() {
	local out
	out=$(curl -s --max-time 10 -w '\n%{http_code}' -X POST \
		-H "X-API-KEY: $ADMIN_KEY" -H 'Content-Type: application/json' \
		--data "$2" "http://$ADMIN_ADDR$1") || out=$'\n000'
	printf '%s %s' "${out##*$'\n'}" "${out%$'\n'*}"
}

# seed PATH JSON WHAT: creates WHAT unless it exists (409).
seed() {
	local res code
	res=$(admin_post "$1" "$2")
	code=${res%% *}
	case "$code" in
	200 | 201) echo "seeded $3" ;;
	409) echo "$3 already seeded" ;;
	*) die "POST $1 failed with status $code: ${res#* }" ;;
	esac
}

random_key() {
	if command -v openssl >/dev/null 2>&1; then
		openssl rand -hex 24
	else
		head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'
	fi
}

chat_body='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}]}'

# key_works KEY: true when a chat request with KEY succeeds (retries briefly
# while a fresh key reaches the proxy's config snapshot).
key_works() {
	local i code
	for ((i = 0; i < 10; i++)); do
		code=$(http_code "http://$PROXY_ADDR/v1/chat/completions" -X POST \
			-H "Authorization: Bearer $1" -H 'Content-Type: application/json' --data "$chat_body")
		[[ $code == 200 ]] && return 0
		[[ $code == 401 && $i -ge 5 ]] && return 1
		sleep 0.3
	done
	return 1
}

case "${1:-}" in
-h | --help)
	usage
	exit 0
	;;
--stop)
	stop_one sluice
	stop_one mockllm
	exit 0
	;;
"") ;;
*)
	usage >&2
	exit 2
	;;
esac

command -v curl >/dev/null 2>&1 || die "curl is required"
if ! command -v go >/dev/null 2>&1; then
	[[ -x /usr/local/go/bin/go ]] || die "Go is required (https://go.dev/dl/)"
	PATH=/usr/local/go/bin:$PATH
fi

mkdir -p "$STATE" "$BIN" "$ROOT/data"
chmod 700 "$STATE"

# The admin key: from the environment, else generated once and kept.
if [[ -n ${SLUICE_ADMIN_KEY:-} ]]; then
	ADMIN_KEY=$SLUICE_ADMIN_KEY
elif [[ -s "$STATE/admin.key" ]]; then
	ADMIN_KEY=$(cat "$STATE/admin.key")
else
	ADMIN_KEY=$(random_key)
	(umask 077 && printf '%s\n' "$ADMIN_KEY" >"$STATE/admin.key")
fi
[[ -f "$STATE/admin.key" ]] && chmod 600 "$STATE/admin.key"
((${#ADMIN_KEY} >= 32)) || die "the admin key must be at least 32 characters"

echo "building bin/sluice and bin/mockllm"
go build -o "$BIN/sluice" ./cmd/sluice
go build -o "$BIN/mockllm" ./cmd/mockllm

if alive mockllm; then
	echo "mockllm already running (pid $(cat "$STATE/mockllm.pid"))"
elif [[ $(http_code "http://$MOCK_ADDR/healthz") == 200 ]]; then
	echo "something already answers on $MOCK_ADDR; using it as the mock provider"
	rm -f "$STATE/mockllm.pid"
else
	echo "starting mockllm on $MOCK_ADDR"
	nohup "$BIN/mockllm" --listen "$MOCK_ADDR" --api-key "$MOCK_KEY" >"$STATE/mockllm.log" 2>&1 &
	echo $! >"$STATE/mockllm.pid"
fi
wait_healthy mockllm "http://$MOCK_ADDR/healthz"

if alive sluice; then
	echo "sluice already running (pid $(cat "$STATE/sluice.pid"))"
else
	if [[ $(http_code "http://$ADMIN_ADDR/healthz") != 000 ]]; then
		die "something already listens on $ADMIN_ADDR; stop it or set SLUICE_ADMIN_LISTEN"
	fi
	echo "starting sluice (proxy $SLUICE_LISTEN, admin $SLUICE_ADMIN_LISTEN)"
	SLUICE_LISTEN=$SLUICE_LISTEN SLUICE_ADMIN_LISTEN=$SLUICE_ADMIN_LISTEN \
		SLUICE_ADMIN_KEY=$ADMIN_KEY SLUICE_DATA_DIR="$ROOT/data" \
		DATABASE_URL=${DATABASE_URL:-} REDIS_URL=${REDIS_URL:-} \
		nohup "$BIN/sluice" serve >"$STATE/sluice.log" 2>&1 &
	echo $! >"$STATE/sluice.pid"
fi
wait_healthy sluice "http://$ADMIN_ADDR/healthz"
wait_healthy sluice "http://$PROXY_ADDR/healthz"

seed /admin/providers \
	"{\"name\":\"mock\",\"type\":\"openai-compatible\",\"base_url\":\"http://$MOCK_ADDR/v1\",\"api_key\":\"$MOCK_KEY\"}" \
	"provider mock"
seed /admin/models \
	'{"name":"gpt-4o-mini","deployments":[{"provider":"mock","model":"gpt-4o-mini","weight":1,"input_price_per_mtok":0.15,"output_price_per_mtok":0.6}]}' \
	"model gpt-4o-mini"
seed /admin/providers \
	"{\"name\":\"mock-anthropic\",\"type\":\"anthropic\",\"base_url\":\"http://$MOCK_ADDR\",\"api_key\":\"$MOCK_KEY\"}" \
	"provider mock-anthropic"
seed /admin/models \
	'{"name":"claude-sonnet-4-5","deployments":[{"provider":"mock-anthropic","model":"claude-sonnet-4-5","weight":1,"input_price_per_mtok":3,"output_price_per_mtok":15}]}' \
	"model claude-sonnet-4-5"
seed /admin/models \
	'{"name":"text-embedding-3-small","deployments":[{"provider":"mock","model":"text-embedding-3-small","weight":1,"input_price_per_mtok":0.02,"output_price_per_mtok":0}]}' \
	"model text-embedding-3-small"

DEMO_KEY=""
if [[ -s "$STATE/demo.key" ]]; then
	DEMO_KEY=$(cat "$STATE/demo.key")
	if key_works "$DEMO_KEY"; then
		echo "demo key already created"
	else
		echo "the saved demo key no longer works; creating a new one"
		DEMO_KEY=""
	fi
fi
if [[ -z $DEMO_KEY ]]; then
	res=$(admin_post /admin/keys "{\"name\":\"demo-$(date +%s)\"}")
	code=${res%% *}
	[[ $code == 200 || $code == 201 ]] || die "POST /admin/keys failed with status $code"
	DEMO_KEY=$(printf '%s' "${res#* }" | grep -o '"key"[[:space:]]*:[[:space:]]*"[^"]*"' | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/')
	[[ -n $DEMO_KEY ]] || die "POST /admin/keys returned no key"
	(umask 077 && printf '%s\n' "$DEMO_KEY" >"$STATE/demo.key")
	chmod 600 "$STATE/demo.key"
	key_works "$DEMO_KEY" || die "a chat request with the new demo key failed; see $STATE/sluice.log"
	echo "created a demo key"
fi

cat <<EOF

Sluice is running.

  admin key:  $ADMIN_KEY   (saved in .quickstart/admin.key)
  dashboard:  http://$ADMIN_ADDR/ui/
  proxy:      http://$PROXY_ADDR/v1   (OpenAI-compatible)
  demo key:   $DEMO_KEY   (saved in .quickstart/demo.key)
  logs:       .quickstart/sluice.log, .quickstart/mockllm.log
  stop:       ./quick-start.sh --stop

Try it:

  curl http://$PROXY_ADDR/v1/chat/completions \\
    -H "Authorization: Bearer $DEMO_KEY" \\
    -H "Content-Type: application/json" \\
    -d '$chat_body'

  # the same model family through Anthropic's API, or an Anthropic model
  # through OpenAI's (translated both ways):
  curl http://$PROXY_ADDR/v1/messages -H "x-api-key: $DEMO_KEY" \\
    -H "Content-Type: application/json" \\
    -d '{"model":"claude-sonnet-4-5","max_tokens":256,"messages":[{"role":"user","content":"Hello"}]}'

EOF
