"""Wall time and peak memory of the pipeline's interaction ExampleGen alone, on Beam's
DirectRunner in multi-processing mode with 1 and 2 worker processes.

Usage (inside the environment):
    bin/env-run python bench/example_gen.py [--input ../shared/data/beauty --format p5]
        [--workers 1 2] [--out DIR]

Each measurement is its own process (a one-component pipeline under LocalDagRunner, cache off),
so `executor_peak_rss_mib` is the peak resident memory of the process the ExampleGen executor
runs in (the Beam runner's control process: the DirectRunner keeps shuffled data there) and
`workers_peak_rss_mib` the largest of its finished worker processes'. Results:
docs/pipeline.md.
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


def one(input_dir: str, format_name: str, workers: int, root: str) -> dict:
    """Runs in a fresh process: one ExampleGen execution; its wall time and peak RSS."""
    import resource

    import tf_ccfrec.compat  # noqa: F401  (before TensorFlow)
    from tfx import v1 as tfx

    from tfx_pipeline.outputs import dataset_statistics
    from tfx_pipeline.pipeline.configs import PipelineConfig
    from tfx_pipeline.pipeline.pipeline import example_gen_for

    config = PipelineConfig(input_dir=input_dir, format=format_name,
                            pipeline_root=os.path.join(root, "tfx"),
                            serving_model_dir=os.path.join(root, "serving"),
                            direct_running_mode="multi_processing", direct_num_workers=workers,
                            enable_cache=False)
    metadata = os.path.join(root, "metadata.sqlite")
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="example_gen_bench", pipeline_root=config.pipeline_root,
        components=[example_gen_for(config, "interactions").with_id("ExampleGen")],
        enable_cache=False,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            metadata),
        beam_pipeline_args=config.beam_pipeline_args())
    started = time.time()
    tfx.orchestration.LocalDagRunner().run(pipeline)
    seconds = time.time() - started
    return {"workers": workers, "seconds": round(seconds, 1),
            "executor_peak_rss_mib": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "workers_peak_rss_mib": round(
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
            "dataset": dataset_statistics(metadata)}


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", default=os.path.join(SHARED, "beauty"))
    parser.add_argument("--format", default="p5")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", default=None)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: one measurement
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(one(args.input, args.format, args.one, args.out)))
        return
    results = []
    for workers in args.workers:
        root = tempfile.mkdtemp(prefix=f"example-gen-{workers}-", dir=args.out)
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--input", args.input,
                              "--format", args.format, "--one", str(workers), "--out", root],
                             check=True, capture_output=True, text=True, cwd=REPO)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    print(json.dumps({"machine": f"{os.cpu_count()} cores, {platform.machine()}",
                      "input": args.input, "results": results}))


if __name__ == "__main__":
    sys.path.insert(0, REPO)
    main(sys.argv[1:])
