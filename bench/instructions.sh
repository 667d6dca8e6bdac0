#!/usr/bin/env bash
# Instructions the gateway executes a request, per thread, counted by callgrind: a figure
# that does not move with whatever else the machine is doing, for comparing two builds
# where timings drown in a shared host's noise.
#
#     bench/instructions.sh                          # 3,000 `auto` requests, OpenAI's API
#     bench/instructions.sh --requests 1000 --body prompt.json
#     bench/instructions.sh --path /v1/messages --body anthropic.json
#     bench/instructions.sh --bin /tmp/before        # another build's llm-router and router-sim
#     bench/instructions.sh --body stream.json --chunk-ms 2   # a stream paced as a model paces it
#     bench/instructions.sh --upstream ollama --body stream.json  # the models behind Ollama's API
#
# It starts the fake upstream (`router-sim`) and the gateway under
# `valgrind --tool=callgrind --separate-threads=yes` (SQLite store on, judge and dashboard
# off), sends 200 requests to warm it up, zeroes the counters, sends the measured requests
# one after another over one keep-alive connection, and prints each thread's instructions
# divided by the number of requests. The profiles stay in the output directory for
# `callgrind_annotate` (self costs: `callgrind_annotate --auto=no --threshold=100 FILE`).
#
# Valgrind hides the CPU's SHA instructions, so a SHA-256 (the stored prompt's digest) runs
# in software here and costs more than it does on a CPU that has them.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

bin="$root/target/release"
requests=3000
path=/v1/chat/completions
body=""
out=""
chunk_ms=0
upstream=openai
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin="$2"; shift 2 ;;
        --requests) requests="$2"; shift 2 ;;
        --path) path="$2"; shift 2 ;;
        --body) body="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --chunk-ms) chunk_ms="$2"; shift 2 ;;
        --upstream) upstream="$2"; shift 2 ;;
        *) echo "unknown option: $1 (see the top of $0)" >&2; exit 2 ;;
    esac
done
case "$upstream" in
    openai) provider=openai-compatible; base_url_path=/v1 ;;
    ollama) provider=ollama; base_url_path="" ;;
    *) echo "--upstream is openai or ollama, not $upstream" >&2; exit 2 ;;
esac
for program in llm-router router-sim; do
    [ -x "$bin/$program" ] || {
        echo "no $bin/$program: cargo build --release -p llm-router -p router-sim" >&2
        exit 1
    }
done
if ! command -v valgrind >/dev/null; then
    echo "== installing valgrind" >&2
    if [ "$(id -u)" -eq 0 ]; then apt-get install -y -qq valgrind; else sudo apt-get install -y -qq valgrind; fi
fi
[ -n "$out" ] || out="$(mktemp -d)"
mkdir -p "$out"
rm -f "$out"/callgrind.* "$out"/gateway.db*

# Below Linux's ephemeral range (32768-60999): a health check sent to a port in that range
# before anything listens there can connect to itself and hold the port in TIME_WAIT.
port_gw="${INSTRUCTIONS_PORT:-29200}"
port_up=$((port_gw + 1))
"$bin/router-sim" --listen "127.0.0.1:$port_up" --model bench-small --model bench-large \
    --chunk-ms "$chunk_ms" >"$out/sim.log" 2>&1 &
sim=$!
# The next run may want the same ports at once: wait for both to be gone.
trap 'kill $sim ${gateway:-} 2>/dev/null || true; wait 2>/dev/null || true' EXIT

cat >"$out/gateway.toml" <<EOF
[server]
listen = "127.0.0.1:$port_gw"
[dashboard]
enabled = false
[judge]
mode = "off"
[store]
url = "sqlite://$out/gateway.db"
[[models]]
name = "bench-small"
provider = "$provider"
base_url = "http://127.0.0.1:$port_up$base_url_path"
input_price = 0.15
output_price = 0.6
[[models]]
name = "bench-large"
provider = "$provider"
base_url = "http://127.0.0.1:$port_up$base_url_path"
input_price = 2.5
output_price = 10.0
EOF
valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out/callgrind.%p" \
    "$bin/llm-router" --config "$out/gateway.toml" serve >"$out/gateway.log" 2>&1 &
gateway=$!

# Sends N requests over one connection; fails on any answer but 200.
client() {
    python3 - "$1" "$path" "$body" "$port_gw" <<'PY'
import http.client, json, sys
count, path, body_file, port = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
if body_file:
    body = open(body_file, "rb").read()
else:
    question = "Explain hash maps briefly, with an example in Python."
    body = {"model": "auto", "messages": [{"role": "user", "content": question}]}
    if path == "/v1/messages":
        body["max_tokens"] = 512
    body = json.dumps(body).encode()
headers = {"content-type": "application/json", "anthropic-version": "2023-06-01"}
connection = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(count):
    connection.request("POST", path, body, headers)
    response = connection.getresponse()
    answer = response.read()
    if response.status != 200:
        sys.exit(f"{response.status}: {answer[:300]!r}")
PY
}

ready=""
for _ in $(seq 240); do
    if curl -s -o /dev/null "http://127.0.0.1:$port_gw/health"; then ready=1; break; fi
    sleep 0.5
done
if [ -z "$ready" ]; then
    echo "the gateway did not come up on port $port_gw (INSTRUCTIONS_PORT picks another):" >&2
    tail -5 "$out/gateway.log" "$out/sim.log" >&2
    exit 1
fi
client 200
callgrind_control -z "$gateway" >/dev/null 2>&1
client "$requests"
# Thread names, in the order valgrind numbers the threads (the order they were made).
names=()
for task in $(ls "/proc/$gateway/task" | sort -n); do
    names+=("$(cat "/proc/$gateway/task/$task/comm" 2>/dev/null || echo '?')")
done
callgrind_control -d "$gateway" >/dev/null 2>&1
kill "$gateway"
wait "$gateway" 2>/dev/null || true
gateway=""

python3 - "$out" "$requests" "${names[@]}" <<'PY'
import glob, os, re, sys
out, requests, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
rows = []
# The dump taken after the measured requests is part 1 of each thread's profile.
for path in glob.glob(os.path.join(out, "callgrind.*.1-*")):
    thread = int(path.rsplit("-", 1)[1])
    total = 0
    with open(path) as profile:
        for line in profile:
            if line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
    if total:
        name = names[thread - 1] if thread - 1 < len(names) else "?"
        rows.append((total, thread, name))
rows.sort(reverse=True)
print(f"instructions a request over {requests:,} requests (callgrind; profiles in {out})")
for total, thread, name in rows:
    if total / requests >= 50:
        print(f"  thread {thread:2} {name:<24} {total / requests / 1000:9.1f} k")
print(f"  {'all threads':<34} {sum(r[0] for r in rows) / requests / 1000:9.1f} k")
PY
