"""Latency and throughput of `ccfrec serve`, REST and gRPC, against the exported signature called
in-process, in one run on one machine; and the first request after a start with and without
warm-up.

Usage (inside the environment):
    bin/env-run python bench/serving/latency.py [--export DIR] [--data ../shared/data/beauty]
        [--requests 2000] [--repeats 3] [--throughput-requests 6000] [--concurrency 8 32]

Without --export it writes (once, cached under /tmp/ccfrec-bench) a Beauty-shaped export: the
Beauty catalog's 12,101 item ids and the default model sizes (d = 128, 2 layers, history 20),
top-10, untrained weights (serving runs the sequence encoder and one product with the catalog's
vectors, whose cost does not depend on the weights). Requests are real Beauty test histories
(each user's sequence without its last item), one history per request, exact search.

Each measurement's client runs in its own process (threads for concurrency, keep-alive
connections / one gRPC channel), on the same cores as the server. Results: docs/serving.md.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = "/tmp/ccfrec-bench"


def beauty(data: str):
    """(item ids, test histories) of the Beauty dataset."""
    sys.path.insert(0, REPO)
    import tf_ccfrec.compat  # noqa: F401

    from tf_ccfrec.data import readers

    dataset = readers.read("p5", data)
    item_ids = sorted(dataset.items)
    histories = [sequence[:-1][-20:] for sequence in dataset.sequences.values()]
    return item_ids, histories


def beauty_export(item_ids, directory: str) -> str:
    """A Beauty-shaped export at `directory`/ccfrec/1 (written once)."""
    path = os.path.join(directory, "ccfrec", "1")
    if os.path.exists(path):
        return path
    import tensorflow as tf

    from tf_ccfrec.export import saved_model
    from tf_ccfrec.models.ccfrec import CCFRecModel
    from tf_ccfrec.models.config import ModelConfig

    tf.keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    config = ModelConfig()
    n = len(item_ids)
    model = CCFRecModel(config, rng.integers(0, 256, (n, 16)),
                        rng.standard_normal((n, 4, config.dim)).astype(np.float32),
                        codebook_size=256, seed=0)
    model.compute_loss({"history": tf.ones([1, config.max_history], tf.int32),
                        "target": tf.ones([1], tf.int32)})
    saved_model.export(model, item_ids, np.arange(n + 1), path, top_k=10)
    return path


def percentiles(seconds) -> dict:
    ms = np.asarray(seconds) * 1000
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99))}


def in_process(signature, histories, count: int) -> dict:
    """The exported serving_default called in this process, one history at a time."""
    import tensorflow as tf

    for history in histories[:50]:
        signature(history=tf.constant([history]))
    times = []
    for i in range(count):
        started = time.perf_counter()
        answer = signature(history=tf.constant([histories[i % len(histories)]]))
        {k: v.numpy() for k, v in answer.items()}
        times.append(time.perf_counter() - started)
    return percentiles(times)


# -- clients (each run in a process of its own: `latency.py --client ...`) --------------------

def rest_client(port: int, histories, concurrency: int, total: int) -> dict:
    bodies = [json.dumps({"instances": [h], "search": "exact"}).encode() for h in histories]
    return _load(concurrency, total, bodies, lambda: _RestCall(port))


class _RestCall:
    def __init__(self, port):
        import http.client

        self.port, self.http = port, http.client
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def __call__(self, body) -> bool:
        try:
            self.connection.request("POST", "/v1/models/ccfrec:predict", body,
                                    {"Content-Type": "application/json"})
            answer = self.connection.getresponse()
            answer.read()
            return answer.status == 200
        except (OSError, self.http.HTTPException):
            self.connection = self.http.HTTPConnection("127.0.0.1", self.port, timeout=60)
            return False


def rest_status_client(port: int, histories, concurrency: int, total: int) -> dict:
    """GET model status: the REST round trip without model work."""
    import http.client

    def make_call():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        def call(_) -> bool:
            connection.request("GET", "/v1/models/ccfrec")
            answer = connection.getresponse()
            answer.read()
            return answer.status == 200
        return call

    return _load(concurrency, total, [None], make_call)


def grpc_status_client(port: int, histories, concurrency: int, total: int) -> dict:
    """GetModelStatus: the gRPC round trip without model work."""
    import grpc
    from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

    stub = model_service_pb2_grpc.ModelServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "ccfrec"

    def call(_) -> bool:
        stub.GetModelStatus(request, 60)
        return True

    return _load(concurrency, total, [None], lambda: call)


def grpc_client(port: int, histories, concurrency: int, total: int) -> dict:
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    requests = []
    for history in histories:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "ccfrec"
        request.inputs["history"].CopyFrom(tf.make_tensor_proto([history], tf.string))
        requests.append(request)

    def call(request) -> bool:
        try:
            stub.Predict(request, 60)
            return True
        except grpc.RpcError:
            return False

    return _load(concurrency, total, requests, lambda: call)


def _load(concurrency: int, total: int, payloads, make_call) -> dict:
    latencies, errors, lock = [], [0], threading.Lock()
    counter = iter(range(total))

    def client():
        call = make_call()
        for i in counter:
            started = time.perf_counter()
            ok = call(payloads[i % len(payloads)])
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                errors[0] += not ok

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    warm = make_call()
    for payload in payloads[:100]:
        warm(payload)
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {**percentiles(latencies), "rps": len(latencies) / wall, "errors": errors[0]}


CLIENTS = {"rest": rest_client, "grpc": grpc_client, "rest-status": rest_status_client,
           "grpc-status": grpc_status_client}


def first_requests(port: int, histories) -> dict:
    """Latencies of the first and the tenth request to a server that just started."""
    times = []
    call = _RestCall(port)
    for history in histories[:10]:
        body = json.dumps({"instances": [history], "search": "exact"}).encode()
        started = time.perf_counter()
        assert call(body)
        times.append((time.perf_counter() - started) * 1000)
    return {"first_ms": times[0], "tenth_ms": times[9]}


def run_client(args, histories) -> dict:
    """This script in a new process, as one client; its JSON answer."""
    command = [sys.executable, os.path.abspath(__file__), "--client", args[0],
               "--port", str(args[1]), "--concurrency", str(args[2]), "--total", str(args[3]),
               "--histories", args[4]]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"client {args[0]} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# -- the server -----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(base: str, *flags: str):
    rest, grpc_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tf_ccfrec.cli", "serve", "--model-base", base, "--model-name",
         "ccfrec", "--port", str(rest), "--grpc-port", str(grpc_port), *flags],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", rest), timeout=1):
                return process, rest, grpc_port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not start")


def stop_server(process) -> None:
    process.terminate()
    process.wait(timeout=60)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--export", help="an export's version directory (default: Beauty-shaped)")
    parser.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data", "beauty"))
    parser.add_argument("--requests", type=int, default=2000, help="per latency measurement")
    parser.add_argument("--throughput-requests", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32],
                        help="throughput settings (concurrency 1 is always measured)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs at concurrency 1")
    parser.add_argument("--client", choices=tuple(CLIENTS) + ("first",))
    parser.add_argument("--port", type=int)
    parser.add_argument("--total", type=int)
    parser.add_argument("--histories", help="(clients) a JSON file of the histories")
    args = parser.parse_args()
    if args.client:
        with open(args.histories) as f:
            histories = json.load(f)
        if args.client == "first":
            print(json.dumps(first_requests(args.port, histories)))
            return
        client = CLIENTS[args.client]
        print(json.dumps(client(args.port, histories, args.concurrency[0], args.total)))
        return
    item_ids, histories = beauty(args.data)
    os.makedirs(CACHE, exist_ok=True)
    histories_file = os.path.join(CACHE, "histories.json")
    with open(histories_file, "w") as f:
        json.dump(histories, f)
    path = args.export or beauty_export(item_ids, os.path.join(CACHE, "beauty"))
    base = os.path.dirname(os.path.dirname(os.path.abspath(path)))
    print(f"# {os.cpu_count()} cores; export {path}; {len(histories)} Beauty test histories; "
          f"top-10, exact, one history per request", flush=True)
    process, rest, grpc_port = start_server(base)
    try:
        from tf_ccfrec.export import saved_model

        signature = saved_model.load(path).signatures["serving_default"]
        runs = {"signature in-process": [], "REST": [], "gRPC": []}
        for _ in range(args.repeats):  # interleaved, so drifts of the machine hit all three
            runs["signature in-process"].append(in_process(signature, histories, args.requests))
            for api, port in (("REST", rest), ("gRPC", grpc_port)):
                runs[api].append(run_client((api.lower(), port, 1, args.requests,
                                             histories_file), histories))
        base_p50 = float(np.median([r["p50"] for r in runs["signature in-process"]]))
        print(f"Concurrency 1, {args.repeats} interleaved runs of {args.requests} requests:")
        print()
        print("| caller | p50 ms, each run | median p50 ms | above in-process ms | "
              "median p99 ms | errors |")
        print("|---|---|---|---|---|---|")
        for caller, results in runs.items():
            p50 = float(np.median([r["p50"] for r in results]))
            each = " / ".join(f"{r['p50']:.2f}" for r in results)
            print(f"| {caller} | {each} | "
                  f"{p50:.2f} | {p50 - base_p50:+.2f} | "
                  f"{np.median([r['p99'] for r in results]):.2f} | "
                  f"{sum(r.get('errors', 0) for r in results)} |", flush=True)
        print()
        print("| caller | concurrency | p50 ms | p99 ms | requests/s | errors |")
        print("|---|---|---|---|---|---|")
        for api, port in (("REST status (no model work)", rest),
                          ("gRPC status (no model work)", grpc_port)):
            client = "rest-status" if api.startswith("REST") else "grpc-status"
            r = run_client((client, port, 1, args.requests, histories_file), histories)
            print(f"| {api} | 1 | {r['p50']:.2f} | {r['p99']:.2f} | {r['rps']:.0f} | "
                  f"{r['errors']} |", flush=True)
        for concurrency in [c for c in args.concurrency if c > 1]:
            for api, port in (("REST", rest), ("gRPC", grpc_port)):
                r = run_client((api.lower(), port, concurrency, args.throughput_requests,
                                histories_file), histories)
                print(f"| {api} | {concurrency} | {r['p50']:.2f} | {r['p99']:.2f} | "
                      f"{r['rps']:.0f} | {r['errors']} |", flush=True)
    finally:
        stop_server(process)
    print()
    print("| warm-up | first request ms | tenth request ms |")
    print("|---|---|---|")
    for warmup in ("true", "false"):
        process, rest, _ = start_server(base, "--enable_model_warmup", warmup)
        try:
            r = run_client(("first", rest, 1, 10, histories_file), histories)
        finally:
            stop_server(process)
        print(f"| {'on' if warmup == 'true' else 'off'} | {r['first_ms']:.1f} | "
              f"{r['tenth_ms']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
