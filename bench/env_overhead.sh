#!/bin/sh
# Time of entering the cached environment: `bin/env-run true` and `bin/ccfrec --help`, N runs each.
# Usage: bench/env_overhead.sh [N]   (results: docs/environment.md)
set -eu
cd "$(dirname "$0")/.."
n=${1:-20}
bin/env-run --setup >/dev/null
python3 - "$n" <<'PY'
import statistics, subprocess, sys, time
n = int(sys.argv[1])
for argv in (["bin/env-run", "true"], ["bin/ccfrec", "--help"]):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    print("%-22s median %.3f s  min %.3f s  max %.3f s  (%d runs)"
          % (" ".join(argv), statistics.median(times), min(times), max(times), n))
PY
