"""HTTP latency and throughput of `ccfrec serve` at several concurrencies, exact vs ScaNN.

Usage (inside the environment; an exported model under BASE/NAME/VERSION):
    bin/env-run python bench/serving/latency.py --model-base serving_model --model-name ccfrec \
        --data out/beauty/prepared [--concurrency 1 8 32] [--requests 2000]

Starts the server on loopback, sends real test-split histories (one per request, keep-alive
connections, one client thread per concurrent client, on the same machine as the server) and
prints p50/p95/p99 latency, requests/s and errors per setting. Results: docs/serving.md.
"""

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def histories(prepared, count):
    import tf_ccfrec.compat  # noqa: F401

    from tf_ccfrec.data import tfrecords

    examples = tfrecords.read_examples(prepared, "test")
    return [e.history for e in examples[:count]]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_load(port, name, bodies, concurrency, total):
    latencies, errors, lock = [], [0], threading.Lock()
    counter = iter(range(total))

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for i in counter:
            body = bodies[i % len(bodies)]
            started = time.perf_counter()
            try:
                connection.request("POST", f"/v1/models/{name}:predict", body,
                                   {"Content-Type": "application/json"})
                answer = connection.getresponse()
                answer.read()
                ok = answer.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                errors[0] += not ok

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {"p50": np.percentile(ms, 50), "p95": np.percentile(ms, 95),
            "p99": np.percentile(ms, 99), "rps": len(ms) / wall, "errors": errors[0]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-base", default="serving_model")
    parser.add_argument("--model-name", default="ccfrec")
    parser.add_argument("--data", default="out/beauty/prepared")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--top-k", type=int, default=10)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tf_ccfrec.cli", "serve", "--model-base", args.model_base,
         "--model-name", args.model_name, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    try:
        for _ in range(240):
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", f"/v1/models/{args.model_name}")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        users = histories(args.data, 5000)
        print(f"# {os.cpu_count()} cores; {len(users)} test histories of {args.data}; "
              f"{args.requests} requests per setting")
        print("| search | concurrency | p50 ms | p95 ms | p99 ms | requests/s | errors |")
        print("|---|---|---|---|---|---|---|")
        for search in ("exact", "scann"):
            bodies = [json.dumps({"instances": [h], "search": search}) for h in users]
            run_load(port, args.model_name, bodies, 4, 200)  # warm-up
            for concurrency in args.concurrency:
                r = run_load(port, args.model_name, bodies, concurrency, args.requests)
                print(f"| {search} | {concurrency} | {r['p50']:.1f} | {r['p95']:.1f} | "
                      f"{r['p99']:.1f} | {r['rps']:.0f} | {r['errors']} |", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
