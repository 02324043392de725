"""Time and peak memory of `ccfrec catalog add` for N new items whose texts recombine the
catalog's own (item i's title with item j's other views), end to end: a fresh process, the
encoder loaded, every text embedded (the embedding cache off), codes, fusion, the new version
written (ScaNN index included).

Usage (inside the environment):
    bin/env-run python bench/catalog_add.py --run out/cold/office/ccfrec-cold [--items 1000] \
        [--serve]

Exports the run as version 1 under /tmp/ccfrec-bench/catalog-<n>, then adds the items. With
`--serve`, `ccfrec serve` then loads the new version and answers a ScaNN query whose history is
new items, over REST (its seconds and top items are printed).
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def recombined(prepared: str, views, count: int, seed: int = 0):
    """`count` JSON Lines items: title of one catalog item, the other views of another."""
    import numpy as np

    from tf_ccfrec.data import tfrecords

    ids, items = tfrecords.read_catalog(prepared, views)
    rng = np.random.default_rng(seed)
    lines = []
    for k in range(count):
        first, second = (items[ids[i]] for i in rng.integers(0, len(ids), 2))
        record = {"item_id": f"new-{k}", **{v: second[v] for v in views}}
        record[views[0]] = f"{first[views[0]]} {k}"
        lines.append(json.dumps(record))
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", required=True, help="a `ccfrec train` CCFRec run directory")
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--serve", action="store_true",
                        help="serve the new version and query it with ScaNN over REST")
    args = parser.parse_args()
    sys.path.insert(0, REPO)
    import tf_ccfrec.compat  # noqa: F401

    from tf_ccfrec import storage
    from tf_ccfrec.codes import artifact
    from tf_ccfrec.export import saved_model

    run = storage.read_json(os.path.join(args.run, "config.json"))
    views = artifact.load(run["codes"]).views
    base = f"/tmp/ccfrec-bench/catalog-{args.items}"
    shutil.rmtree(base, ignore_errors=True)
    saved_model.export_run(args.run, os.path.join(base, "ccfrec", "1"), top_k=10)
    items_file = os.path.join(base, "new.jsonl")
    with open(items_file, "w") as f:
        f.write(recombined(run["prepared"], views, args.items))
    started = time.time()
    result = subprocess.run(
        [sys.executable, "-m", "tf_ccfrec.cli", "catalog", "add", "--model-base", base,
         "--model-name", "ccfrec", "--items", items_file, "--embedding-cache", ""],
        capture_output=True, text=True, cwd=REPO)
    seconds = time.time() - started
    if result.returncode:
        raise SystemExit(result.stderr[-3000:])
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 / 1024
    report = {"items_added": summary["added"], "catalog": summary["items"],
              "embedded_texts": summary["embedded_texts"],
              "seconds_end_to_end": round(seconds, 1),
              "seconds_inside": summary["seconds"], "peak_rss_gib": round(peak, 2),
              "cores": os.cpu_count()}
    if args.serve:
        report["served"] = serve_and_query(base, summary["version"], ["new-0", "new-1"])
    print(json.dumps(report))


def serve_and_query(base: str, version: int, history):
    """`ccfrec serve` over `base`; once `version` is AVAILABLE, one ScaNN query of `history`:
    {"seconds_to_available", "search", "top"}."""
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.time()
    server = subprocess.Popen(
        [sys.executable, "-m", "tf_ccfrec.cli", "serve", "--model-base", base, "--model-name",
         "ccfrec", "--port", str(port), "--grpc-port", "0"], cwd=REPO,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def call(path, body=None):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}",
            data=None if body is None else json.dumps(body).encode())
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read())

    try:
        deadline = time.time() + 600
        while True:
            if time.time() > deadline or server.poll() is not None:
                raise SystemExit("the server did not load the new version")
            try:
                states = {int(v["version"]): v["state"] for v in
                          call("/v1/models/ccfrec")["model_version_status"]}
                if states.get(version) == "AVAILABLE":
                    break
            except OSError:
                pass
            time.sleep(0.5)
        loaded = time.time() - started
        answer = call("/v1/models/ccfrec:predict", {"instances": [history], "search": "scann"})
        prediction = answer["predictions"][0]
        return {"seconds_to_available": round(loaded, 1), "search": "scann",
                "known_items": prediction["known_items"], "top": prediction["item_ids"][:3]}
    finally:
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
