#!/usr/bin/env python3
"""The judge under more questions than it can answer.

Starts the fake upstream (`router-sim`, whose Ollama judge thinks `--judge-ms` per question
and answers `--judge-parallel` at a time, queueing the rest as Ollama does), then for each
`judge.max_in_flight` in `--limits` a gateway asking the judge about every `auto` request,
and offers it `--rate` requests a second, each with a prompt of its own (so the judge's cache
never answers), open loop, for `--duration` seconds. Reports the client's latency (from when
each request was due) and, from the gateway's store after a graceful stop, who decided: the
judge, the policy because the judge was busy, timed out or was paused.

    cargo build --release --bins
    python3 bench/judge_load.py --rate 40 --limits 1000,4 --rounds 2

Standard library only; the binaries come from target/release.
"""

import argparse
import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")

TOPICS = ["a Python service that double-writes orders", "a Rust borrow-checker error",
          "the proof that sqrt(2) is irrational", "a cover letter for a data analyst",
          "the causes of the French Revolution", "a SQL query that is slow on a large join"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port, path, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            c.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing answered on port {port}")


def gateway_config(port, sim_port, db, limit, timeout_ms):
    models = ""
    for name, price, strengths in [("sim-small", "0.15", '["chat", "writing"]'),
                                   ("sim-large", "2.5", '["code", "math", "reasoning"]')]:
        models += f"""
[[models]]
name = "{name}"
provider = "openai-compatible"
base_url = "http://127.0.0.1:{sim_port}/v1"
input_price = {price}
output_price = {price}
strengths = {strengths}
"""
    return f"""[server]
listen = "127.0.0.1:{port}"

[dashboard]
enabled = false

[store]
url = "sqlite://{db}"

[judge]
mode = "always"
url = "http://127.0.0.1:{sim_port}"
model = "llama3"
timeout_ms = {timeout_ms}
max_in_flight = {limit}
{models}"""


def one_request(port, i, due):
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content":
                       f"Question {i}: help me with {TOPICS[i % len(TOPICS)]}. Keep it short."}]})
    delay = due - time.perf_counter()
    if delay > 0:
        time.sleep(delay)
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
        r = c.getresponse()
        r.read()
        ok = r.status == 200
    except OSError:
        ok = False
    return time.perf_counter() - due, ok


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def who_decided(db):
    counts = {"judge": 0, "busy": 0, "timeout": 0, "paused": 0, "other": 0}
    with sqlite3.connect(db) as conn:
        for source, reason in conn.execute("SELECT source, reason FROM requests"):
            if source == "judge":
                counts["judge"] += 1
            elif "judge unavailable: busy" in reason:
                counts["busy"] += 1
            elif "judge unavailable: timeout" in reason:
                counts["timeout"] += 1
            elif "judge unavailable: paused" in reason:
                counts["paused"] += 1
            else:
                counts["other"] += 1
    return counts


def run(args, limit):
    work = tempfile.mkdtemp(prefix="judge-load-")
    sim_port, port = free_port(), free_port()
    sim = subprocess.Popen(
        [os.path.join(RELEASE, "router-sim"), "--listen", f"127.0.0.1:{sim_port}",
         "--model", "sim-small,sim-large", "--judge", "llama3",
         "--judge-ms", str(args.judge_ms), "--judge-parallel", str(args.judge_parallel)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = os.path.join(work, "gateway.db")
    config = os.path.join(work, "gateway.toml")
    with open(config, "w") as f:
        f.write(gateway_config(port, sim_port, db, limit, args.timeout_ms))
    log = open(os.path.join(work, "gateway.log"), "w")
    gateway = subprocess.Popen([os.path.join(RELEASE, "llm-router"), "serve", "--config", config],
                               stdout=log, stderr=log)
    try:
        wait_http(sim_port, "/api/tags")
        wait_http(port, "/health")
        total = int(args.rate * args.duration)
        start = time.perf_counter() + 0.5
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            futures = [pool.submit(one_request, port, i, start + i / args.rate)
                       for i in range(total)]
            results = [f.result() for f in futures]
    finally:
        gateway.send_signal(signal.SIGINT)
        gateway.wait(timeout=30)
        sim.terminate()
        sim.wait()
    latencies = [t for t, ok in results if ok]
    return {
        "limit": limit,
        "requests": len(results),
        "failed": sum(1 for _, ok in results if not ok),
        "p50": percentile(latencies, 0.5) * 1000,
        "p90": percentile(latencies, 0.9) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
        "decided": who_decided(db),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=40, help="requests a second")
    p.add_argument("--duration", type=float, default=15, help="seconds of load")
    p.add_argument("--judge-ms", type=int, default=150, help="the judge's time per question")
    p.add_argument("--judge-parallel", type=int, default=2, help="questions it answers at once")
    p.add_argument("--timeout-ms", type=int, default=1500, help="judge.timeout_ms")
    p.add_argument("--limits", default="1000,4", help="judge.max_in_flight values, comma-separated")
    p.add_argument("--rounds", type=int, default=1, help="alternating rounds")
    p.add_argument("--workers", type=int, default=512, help="client threads")
    args = p.parse_args()
    limits = [int(x) for x in args.limits.split(",")]
    print(f"{args.rate:g} requests a second for {args.duration:g} s, every prompt new; judge "
          f"{args.judge_ms} ms a question, {args.judge_parallel} at a time; budget "
          f"{args.timeout_ms} ms\n")
    print("| judge.max_in_flight | requests | failed | p50 ms | p90 ms | p99 ms "
          "| judge decided | busy | timed out | paused | other |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for _ in range(args.rounds):
        for limit in limits:
            r = run(args, limit)
            d = r["decided"]
            print(f"| {limit} | {r['requests']} | {r['failed']} | {r['p50']:.0f} | {r['p90']:.0f} "
                  f"| {r['p99']:.0f} | {d['judge']} | {d['busy']} | {d['timeout']} "
                  f"| {d['paused']} | {d['other']} |", flush=True)


if __name__ == "__main__":
    main()
