#!/usr/bin/env bash
# Compares the gateway's serving modes back to back: a serving thread per CPU (the default)
# and one shared work-stealing runtime (`server.threads = 0`), alternating, on the `auto`
# path with the store on. Prints, per run: RPS, the gateway's CPU time and context switches
# per request (from /proc) and oha's p50/p99.
#
#   bench/threads-ab.sh                 # 2,000 RPS and 16 clients, two pairs each
#   bench/threads-ab.sh -q 1000         # any oha load options instead
#
# Needs the release build and oha (bench/run.sh installs and builds both).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/target/release"
oha="$root/bench/.tools/bin/oha"
command -v "$oha" >/dev/null || oha="$(command -v oha)"
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

port_gw=39100
port_up=39101
"$bin/router-sim" --listen "127.0.0.1:$port_up" --model bench-small --model bench-large \
    >"$work/sim.log" 2>&1 &
sleep 0.5

body='{"model":"auto","messages":[{"role":"user","content":"Explain hash maps briefly, with an example in Python."}]}'
ticks_per_s="$(getconf CLK_TCK)"

run() { # run <threads|default> <oha options...>
    local threads="$1"; shift
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
    "$bin/llm-router" --config "$conf" serve >"$work/gateway-$threads.log" 2>&1 &
    local pid=$!
    sleep 1.5
    local load=("$oha" --no-tui -m POST -H content-type:application/json -d "$body"
        "http://127.0.0.1:$port_gw/v1/chat/completions")
    "${load[@]}" -z 2s "$@" >/dev/null
    local cpu0 cs0 cpu1 cs1 out
    cpu0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    cs0=$(cat /proc/"$pid"/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}')
    out=$("${load[@]}" -z 10s "$@")
    cpu1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    cs1=$(cat /proc/"$pid"/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}')
    local n rps p50 p99
    n=$(echo "$out" | grep -o '\[200\] [0-9]*' | awk '{print $2}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')
    p50=$(echo "$out" | awk '/ 50.00% in/ {printf "%.3f", $3}')
    p99=$(echo "$out" | awk '/ 99.00% in/ {printf "%.3f", $3}')
    awk -v t="$threads" -v o="$*" -v r="$rps" -v n="$n" -v c=$((cpu1 - cpu0)) -v hz="$ticks_per_s" \
        -v s=$((cs1 - cs0)) -v a="$p50" -v b="$p99" 'BEGIN {
        printf "threads=%-8s %-10s RPS %6s  CPU/request %4.0f µs  switches/request %.2f  p50 %s ms  p99 %s ms\n",
            t, o, r, c / hz * 1e6 / n, s / n, a, b }'
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

if [ $# -gt 0 ]; then
    for _ in 1 2; do run default "$@"; run 0 "$@"; done
else
    for load in "-q 2000" "-c 16"; do
        # shellcheck disable=SC2086
        for _ in 1 2; do run default $load; run 0 $load; done
    done
fi
