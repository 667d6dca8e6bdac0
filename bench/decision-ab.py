#!/usr/bin/env python3
"""The gateway's decision after an idle spell, for two builds side by side.

    bench/decision-ab.py BEFORE AFTER               # two llm-router binaries
    bench/decision-ab.py BEFORE AFTER --pause-ms 0  # back to back instead
    bench/decision-ab.py A B --rounds 3 --samples 600
    bench/decision-ab.py BEFORE AFTER --chat        # a short `auto` chat request instead

Starts the fake upstream and one gateway of each build (SQLite store on, dashboard off),
then asks both for the analysis of a ~2,000-token prompt (`POST /api/routing/analyze`), in
turn, with a pause before every request, and prints the percentiles of the decision time
each gateway reports (`decision_us`). With `--chat` it sends a short `auto` chat completion
instead (answered by the fake upstream) and reads the whole request's overhead as the
gateway reports it (`x-router-overhead-us`: its time outside the upstream call). Alternating request by request, rather than run by
run, puts both builds through the same moments of a shared host: on a virtual machine
whose host runs other work while a vCPU rests, whole runs differ by more than the builds.
The order within each pair alternates too.

Needs only Python 3 and the release build (`cargo build --release --bins`).
"""

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UPSTREAM_PORT = 29201
GATEWAY_PORTS = (29202, 29203)

# The load test's long prompt (router-bench's `long_prompt`): English prose, ~2,000 tokens.
PARAGRAPH = (
    "Our team runs a payment service written in Rust behind a load balancer. Each request "
    "validates a card token, looks up the merchant's limits in PostgreSQL, writes a ledger "
    "entry and publishes an event to Kafka. Under peak traffic the p99 latency climbs from 40 "
    "to 900 milliseconds, and the database shows lock waits on the ledger table. We suspect "
    "the transaction isolation level and the order in which rows are locked. "
)


# The load test's short `auto` request (bench/threads-ab.sh's).
CHAT = "Explain hash maps briefly, with an example in Python."


def long_prompt(chars=9_600):
    text = ""
    while len(text) < chars:
        text += PARAGRAPH
    return text + "Explain the likely cause step by step and propose a fix with code."


def config(work, port, name):
    path = os.path.join(work, f"{name}.toml")
    with open(path, "w") as f:
        f.write(f'[server]\nlisten = "127.0.0.1:{port}"\n[dashboard]\nenabled = false\n')
        f.write(f'[store]\nurl = "sqlite://{work}/{name}.db"\n')
        for model, input_price, output_price in (("bench-small", 0.15, 0.6), ("bench-large", 2.5, 10.0)):
            f.write(
                f'[[models]]\nname = "{model}"\nprovider = "openai-compatible"\n'
                f'base_url = "http://127.0.0.1:{UPSTREAM_PORT}/v1"\n'
                f"input_price = {input_price}\noutput_price = {output_price}\n"
            )
    return path


def wait_for(port, process, log):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the gateway on port {port} exited; its log is {log}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/health")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"the gateway on port {port} did not start; its log is {log}")


def percentile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--pause-ms", type=float, default=10.0, help="pause before each request (default 10)")
    parser.add_argument("--samples", type=int, default=600, help="requests to each gateway a round (default 600)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chat", action="store_true", help="a short `auto` chat request; its overhead instead")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="decision-ab-")
    sim = os.path.join(ROOT, "target", "release", "router-sim")
    processes = []
    try:
        log = open(os.path.join(work, "router-sim.log"), "w")
        processes.append(subprocess.Popen(
            [sim, "--listen", f"127.0.0.1:{UPSTREAM_PORT}", "--model", "bench-small", "--model", "bench-large"],
            stdout=log, stderr=log))
        builds = (("before", args.before, GATEWAY_PORTS[0]), ("after", args.after, GATEWAY_PORTS[1]))
        for name, binary, port in builds:
            log_path = os.path.join(work, f"{name}.log")
            log = open(log_path, "w")
            gateway = subprocess.Popen([binary, "--config", config(work, port, name), "serve"], stdout=log, stderr=log)
            processes.append(gateway)
            wait_for(port, gateway, log_path)

        if args.chat:
            path, measure = "/v1/chat/completions", "x-router-overhead-us, short `auto` chat request"
            body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": CHAT}]})
        else:
            path, measure = "/api/routing/analyze", "decision_us, ~2,000-token prompt"
            body = json.dumps({"query": long_prompt()})
        connections = {port: http.client.HTTPConnection("127.0.0.1", port) for _, _, port in builds}
        warmup = 20
        print(f"{measure}, {args.pause_ms:g} ms pause before each request, "
              f"{args.samples} requests to each gateway a round")
        for round_number in range(1, args.rounds + 1):
            times = {port: [] for _, _, port in builds}
            for i in range(args.samples + warmup):
                order = builds if i % 2 == 0 else builds[::-1]
                for _, _, port in order:
                    time.sleep(args.pause_ms / 1000)
                    conn = connections[port]
                    conn.request("POST", path, body, {"content-type": "application/json"})
                    response = conn.getresponse()
                    answer = response.read()
                    if response.status != 200:
                        sys.exit(f"{path} answered {response.status}: {answer[:300]!r}")
                    if i >= warmup:
                        if args.chat:
                            times[port].append(int(response.getheader("x-router-overhead-us")))
                        else:
                            times[port].append(json.loads(answer)["decision_us"])
            for name, binary, port in builds:
                t = sorted(times[port])
                print(f"round {round_number}  {name:6}  p50 {percentile(t, 0.5):4} µs  p90 {percentile(t, 0.9):4} µs  "
                      f"p99 {percentile(t, 0.99):4} µs  ({binary})")
    finally:
        for process in processes:
            process.terminate()
            process.wait()


if __name__ == "__main__":
    main()
