"""Wall time and peak memory of `ccfrec data prepare` + `ccfrec codes build` from raw files.

Usage (inside the environment):
    bin/env-run python bench/prepare_codes.py [--datasets beauty yelp office] [--out DIR]

Each step runs as its own process (bin/ccfrec) with an empty embedding cache, so the numbers are
what a first run costs. Results: docs/data_and_codes.md.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO), "shared", "data")
DATASETS = {"beauty": ("p5", os.path.join(SHARED, "beauty")),
            "yelp": ("p5", os.path.join(SHARED, "yelp")),
            "office": ("lcrec", os.path.join(REPO, "data", "office"))}


def timed(argv):
    """Runs argv; returns (seconds, peak RSS in MiB, stdout)."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(argv)}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024, out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", nargs="+", default=["beauty", "yelp"], choices=DATASETS)
    parser.add_argument("--out", default=None, help="keep outputs here (default: a temp dir)")
    parser.add_argument("--method", default="pq", choices=("pq", "rq"))
    args = parser.parse_args()
    ccfrec = os.path.join(REPO, "bin", "ccfrec")
    root = args.out or tempfile.mkdtemp(prefix="ccfrec-bench-")
    print(f"# {platform.node()}: {os.cpu_count()} cores, {platform.python_version()}, "
          f"method {args.method}")
    print("| dataset | items | views | prepare s | prepare peak MiB | codes s | codes peak MiB | "
          "texts embedded | total s | collision rate |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.datasets:
        fmt, directory = DATASETS[name]
        prepared = os.path.join(root, name, "prepared")
        codes = os.path.join(root, name, f"codes-{args.method}")
        cache = os.path.join(root, name, "embedding-cache")
        t1, m1, _ = timed([ccfrec, "data", "prepare", "--format", fmt, "--input", directory,
                           "--output", prepared, "--overwrite"])
        t2, m2, _ = timed([ccfrec, "codes", "build", "--input", prepared, "--output", codes,
                           "--method", args.method, "--embedding-cache", cache, "--no-progress",
                           "--overwrite"])
        with open(os.path.join(codes, "codes.json")) as f:
            manifest = json.load(f)
        print(f"| {name} | {manifest['items']:,} | {len(manifest['views'])} | {t1:.0f} | {m1:.0f} "
              f"| {t2:.0f} | {m2:.0f} | {manifest['embedding']['embedded']:,} | {t1 + t2:.0f} | "
              f"{manifest['usage']['collision_rate']:.4f} |", flush=True)


if __name__ == "__main__":
    main()
