#!/usr/bin/env bash
# Streams offered faster than the machine can serve them, through a gateway whose one
# deployment has a `max_in_flight` limit or none. Prints router-bench's stream summary
# (streams completed and failed, time to first and last token), the gateway's upstream
# connections at their peak and 5 s after the load, and its peak and final resident memory.
#
#   bench/overload.sh                    # no limit, then 64, at 3,000 streams a second
#   bench/overload.sh -r 1000 '' 64 ''   # any rate, any sequence of limits ('' = none)
#
# Needs the release build (bench/run.sh builds it).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/target/release"
rate=3000
duration=8
if [ "${1:-}" = "-r" ]; then rate="$2"; shift 2; fi
[ "$#" -gt 0 ] || set -- "" 64
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# Below Linux's ephemeral range, where a port can be held by a connection to itself.
port_gw=29200
port_up=29201
"$bin/router-sim" --listen "127.0.0.1:$port_up" --model bench >"$work/sim.log" 2>&1 &
sleep 0.5

upstream_connections() {
    ss -tnH state established "( dport = :$port_up )" | wc -l
}

for limit in "$@"; do
    echo "== $rate streams a second for $duration s, max_in_flight = ${limit:-none}"
    rm -f "$work"/gw.db*
    cat >"$work/gw.toml" <<EOF
[server]
listen = "127.0.0.1:$port_gw"
[dashboard]
enabled = false
[store]
url = "sqlite://$work/gw.db"
[judge]
mode = "off"
[[models]]
name = "bench"
provider = "openai-compatible"
base_url = "http://127.0.0.1:$port_up/v1"
capabilities = { streaming = true, tools = true, json = true }
${limit:+max_in_flight = $limit}
EOF
    "$bin/llm-router" serve --config "$work/gw.toml" >"$work/gw.log" 2>&1 &
    gw=$!
    sleep 1.5
    (while kill -0 "$gw" 2>/dev/null; do upstream_connections; sleep 0.2; done) >"$work/conns" &
    monitor=$!
    "$bin/router-bench" stream --url "http://127.0.0.1:$port_gw" --model bench \
        --load "r$rate" --duration "$duration" >"$work/bench.out" 2>&1 || true
    grep -v '^failure' "$work/bench.out" || true
    grep '^failure' "$work/bench.out" | grep -o '"code":"[^"]*"' | sort | uniq -c || true
    sleep 5
    echo "upstream connections: peak $(sort -n "$work/conns" | tail -n1), 5 s after $(upstream_connections)"
    awk '/VmHWM|VmRSS/ { printf "%s %.1f MB  ", $1, $2 / 1024 } END { print "" }' "/proc/$gw/status"
    kill "$monitor" "$gw" 2>/dev/null || true
    wait "$gw" 2>/dev/null || true
done
