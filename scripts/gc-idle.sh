#!/usr/bin/env bash
# scripts/gc-idle.sh: the garbage collector's cost in an idle gateway. It
# builds sluice and mockllm, starts them as quick-start.sh does (SQLite in a
# temporary directory, a mock provider, one model and key) with
# GODEBUG=gctrace=1 and the admin-protected profiler, lets it idle, sends
# some streamed requests, forces a few collections (through
# /debug/pprof/heap?gc=1, whose profiles it keeps), then stops both and
# prints the gctrace lines and the heap's top allocations. In a gctrace line
# "A->B->C MB" ends with the live heap after the cycle, and the "x/y/z ms
# cpu" in the middle is the mark phase's assist/background/idle CPU.
#
#   scripts/gc-idle.sh [REQUESTS]     (default 200)
#
# Environment: GC_IDLE_PORT (default 18730: mock, proxy and admin on it +1,
# +2, +3), GC_IDLE_DIR (default a new temporary directory, kept).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v go >/dev/null 2>&1; then
	PATH=/usr/local/go/bin:$PATH
fi
REQUESTS=${1:-200}
[[ $REQUESTS =~ ^[0-9]+$ ]] || {
	echo "usage: $0 [REQUESTS]" >&2
	exit 2
}
BASE=${GC_IDLE_PORT:-18730}
MP=$((BASE + 1)) PP=$((BASE + 2)) AP=$((BASE + 3))
D=${GC_IDLE_DIR:-$(mktemp -d /tmp/sluice-gc-idle-XXXXXX)}
mkdir -p "$D"
KEY=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')

go build -o "$D/sluice" ./cmd/sluice
go build -o "$D/mockllm" ./cmd/mockllm

pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
}
trap cleanup EXIT

"$D/mockllm" --listen 127.0.0.1:$MP --api-key mock-key >"$D/mock.log" 2>&1 &
pids+=($!)
GODEBUG=gctrace=1 SLUICE_LISTEN=127.0.0.1:$PP SLUICE_ADMIN_LISTEN=127.0.0.1:$AP \
	SLUICE_ADMIN_KEY=$KEY SLUICE_DATA_DIR="$D/data" SLUICE_PPROF=1 SLUICE_ACCESS_LOG=off \
	"$D/sluice" serve >"$D/sluice.log" 2>"$D/gctrace.log" &
pids+=($!)

for _ in $(seq 100); do
	curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$AP/healthz" && break
	sleep 0.3
done
A=(-s --max-time 10 -H "X-API-KEY: $KEY" -H "Content-Type: application/json")
curl "${A[@]}" -o /dev/null -X POST "http://127.0.0.1:$AP/admin/providers" \
	-d "{\"name\":\"mock\",\"type\":\"openai-compatible\",\"base_url\":\"http://127.0.0.1:$MP/v1\",\"api_key\":\"mock-key\"}"
curl "${A[@]}" -o /dev/null -X POST "http://127.0.0.1:$AP/admin/models" \
	-d '{"name":"gpt-4o-mini","deployments":[{"provider":"mock","model":"gpt-4o-mini","weight":1}]}'
DK=$(curl "${A[@]}" -X POST "http://127.0.0.1:$AP/admin/keys" -d '{"name":"gc-idle"}' |
	grep -o '"key"[[:space:]]*:[[:space:]]*"[^"]*"' | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/')
[[ -n $DK ]] || {
	echo "gc-idle: could not create a key; see $D/sluice.log" >&2
	exit 1
}

sleep 10
curl "${A[@]}" "http://127.0.0.1:$AP/debug/pprof/heap?gc=1" -o "$D/heap-idle.pb.gz"
for _ in $(seq "$REQUESTS"); do
	curl -s -o /dev/null --max-time 10 "http://127.0.0.1:$PP/v1/chat/completions" \
		-H "Authorization: Bearer $DK" -H "Content-Type: application/json" \
		-d '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Hello there, how are you?"}]}'
done
sleep 3
for _ in 1 2 3; do
	curl "${A[@]}" "http://127.0.0.1:$AP/debug/pprof/heap?gc=1" -o "$D/heap-after.pb.gz"
	sleep 1
done
curl "${A[@]}" "http://127.0.0.1:$AP/metrics" -o "$D/metrics.txt"
cleanup
trap - EXIT

echo "== gctrace (forced cycles are the profile's, idle or after $REQUESTS requests)"
grep '^gc ' "$D/gctrace.log" || true
echo "== heap objects: $(grep '^go_memstats_heap_objects ' "$D/metrics.txt" | cut -d' ' -f2)"
echo "== heap in use after the requests, top allocations"
go tool pprof -sample_index=inuse_space -top -nodecount=12 "$D/sluice" "$D/heap-after.pb.gz" 2>/dev/null | sed -n '5,20p'
echo "kept in $D"
