#!/usr/bin/env bash
# Compares the gateway's serving modes back to back: a serving thread per CPU (the default)
# and one shared work-stealing runtime (`server.threads = 0`), alternating, on the `auto`
# path with the store on. Prints, per run: RPS, the gateway's CPU time (user and system) and
# voluntary context switches per request (from /proc) and oha's p50/p99.
#
#   bench/threads-ab.sh                 # 2,000 RPS and 16 clients, two pairs each
#   bench/threads-ab.sh -q 1000         # any oha load options instead
#
# With --builds it compares two gateway binaries instead, in the default serving mode, in
# three alternating pairs (CPU time per request is the steadier figure; RPS moves with
# whatever else the machine does):
#
#   bench/threads-ab.sh --builds /tmp/llm-router.before target/release/llm-router -c 16
#
# Needs the release build and oha (bench/run.sh installs and builds both).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/target/release"
oha="$root/bench/.tools/bin/oha"
command -v "$oha" >/dev/null || oha="$(command -v oha)"
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# Below Linux's ephemeral range, where a port can be held by a connection to itself.
port_gw=29100
port_up=29101
"$bin/router-sim" --listen "127.0.0.1:$port_up" --model bench-small --model bench-large \
    >"$work/sim.log" 2>&1 &
sleep 0.5

builds=()
if [ "${1:-}" = --builds ]; then
    builds=("$2" "$3")
    shift 3
fi

# The request: `auto` over OpenAI's chat API, unless AB_PATH and AB_BODY name another, e.g.
# AB_PATH=/v1/messages AB_BODY="$(cat request.json)" for Anthropic's Messages API.
default_body='{"model":"auto","messages":[{"role":"user","content":"Explain hash maps briefly, with an example in Python."}]}'
body="${AB_BODY:-$default_body}"
path="${AB_PATH:-/v1/chat/completions}"
ticks_per_s="$(getconf CLK_TCK)"

run() { # run <llm-router binary> <threads|default> <oha options...>
    local gateway="$1" threads="$2"; shift 2
    local conf="$work/gateway-$threads.toml"
    rm -f "$work"/gateway-"$threads".db*
    {
        echo "[server]"
        echo "listen = \"127.0.0.1:$port_gw\""
        [ "$threads" = default ] || echo "threads = $threads"
        echo "[dashboard]"
        echo "enabled = false"
        echo "[store]"
        echo "url = \"sqlite://$work/gateway-$threads.db\""
        local name input output
        for model in "bench-small 0.15 0.6" "bench-large 2.5 10.0"; do
            read -r name input output <<<"$model"
            echo "[[models]]"
            echo "name = \"$name\""
            echo "provider = \"openai-compatible\""
            echo "base_url = \"http://127.0.0.1:$port_up/v1\""
            echo "input_price = $input"
            echo "output_price = $output"
        done
    } >"$conf"
    "$gateway" --config "$conf" serve >"$work/gateway-$threads.log" 2>&1 &
    local pid=$!
    sleep 1.5
    local load=("$oha" --no-tui -m POST -H content-type:application/json
        -H anthropic-version:2023-06-01 -d "$body" "http://127.0.0.1:$port_gw$path")
    "${load[@]}" -z 2s "$@" >/dev/null
    local user0 sys0 cs0 user1 sys1 cs1 out
    read -r user0 sys0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    cs0=$(cat /proc/"$pid"/task/*/status | awk '/^voluntary_ctxt_switches/ {s += $2} END {print s}')
    out=$("${load[@]}" -z 10s "$@")
    read -r user1 sys1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    cs1=$(cat /proc/"$pid"/task/*/status | awk '/^voluntary_ctxt_switches/ {s += $2} END {print s}')
    local n rps p50 p99
    n=$(echo "$out" | grep -o '\[200\] [0-9]*' | awk '{print $2}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')
    p50=$(echo "$out" | awk '/ 50.00% in/ {printf "%.3f", $3}')
    p99=$(echo "$out" | awk '/ 99.00% in/ {printf "%.3f", $3}')
    local label="threads=$threads"
    [ ${#builds[@]} -eq 0 ] || label="$gateway"
    awk -v t="$label" -v o="$*" -v r="$rps" -v n="$n" -v u=$((user1 - user0)) \
        -v k=$((sys1 - sys0)) -v hz="$ticks_per_s" -v s=$((cs1 - cs0)) -v a="$p50" -v b="$p99" 'BEGIN {
        printf "%-16s %-10s RPS %6s  CPU/request %4.1f µs (user %4.1f, system %4.1f)  switches/request %.2f  p50 %s ms  p99 %s ms\n",
            t, o, r, (u + k) / hz * 1e6 / n, u / hz * 1e6 / n, k / hz * 1e6 / n, s / n, a, b }'
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

if [ ${#builds[@]} -gt 0 ]; then
    [ $# -gt 0 ] || set -- -c 16
    for _ in 1 2 3; do run "${builds[0]}" default "$@"; run "${builds[1]}" default "$@"; done
elif [ $# -gt 0 ]; then
    for _ in 1 2; do run "$bin/llm-router" default "$@"; run "$bin/llm-router" 0 "$@"; done
else
    for load in "-q 2000" "-c 16"; do
        # shellcheck disable=SC2086
        for _ in 1 2; do run "$bin/llm-router" default $load; run "$bin/llm-router" 0 $load; done
    done
fi
