"""Runs the TFX pipeline on the first USERS Office users (their real items and text), small
model, for the pipeline tests:

    python -m tests.pipeline_runner ROOT USERS [--max-history N] [--min-length N]
        [--running-mode MODE --workers N] [--embedding-cache DIR] [--day-two JSON]

`--day-two` takes PipelineConfig fields as JSON (input_pattern, catalog_pattern, item_format,
window_spans, warm_start, catalog_only, ...) over a raw directory the caller laid out (USERS
unused then).

Prints "finished: NODE STATE SECONDS" as each component finishes, and the run summary as JSON
on its last line."""

import json
import os
import sys

import tf_ccfrec.compat  # noqa: F401  (before TensorFlow)

from tests.conftest import OFFICE


def office_subset(directory: str, users: int, min_length: int = 0) -> str:
    """LC-Rec files of the first `users` Office users with at least `min_length` items."""
    from tests import data_files
    from tf_ccfrec.data import readers

    if not os.path.exists(directory):
        office = readers.read("lcrec", OFFICE)
        chosen = [u for u in office.sequences if len(office.sequences[u]) >= min_length][:users]
        items = sorted({i for u in chosen for i in office.sequences[u]}, key=int)
        data_files.lcrec(directory, {u: [int(i) for i in office.sequences[u]] for u in chosen},
                         {i: {v: office.items[i][v] for v in office.views} for i in items},
                         name="Office")
    return directory


def config(root: str, users: int, max_history: int = 20, min_length: int = 0,
           running_mode: str = "in_memory", workers: int = 1, embedding_cache: str = "",
           day_two=None):
    from tfx_pipeline.pipeline.configs import PipelineConfig

    raw = os.path.join(root, "raw")
    return PipelineConfig(
        input_dir=raw if day_two else office_subset(raw, users, min_length), format="lcrec",
        **(day_two or {}),
        pipeline_root=os.path.join(root, "tfx"),
        serving_model_dir=os.path.join(root, "serving", "ccfrec"), max_history=max_history,
        codes={"pca_dim": 16, "codes_per_view": 2, "codebook_size": 16},
        preset="fast",
        model_config={"dim": 16, "fusion_layers": 1, "sequence_layers": 1, "ffn_dim": 32,
                      "num_negatives": 64},
        train_config={"batch_size": 64, "max_epochs": 4, "warmup_steps": 5},
        top_k=10, direct_running_mode=running_mode, direct_num_workers=workers,
        embedding_cache=embedding_cache)


def main(argv):
    import argparse

    from tfx_pipeline import local_runner

    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("users", type=int)
    parser.add_argument("--max-history", type=int, default=20)
    parser.add_argument("--min-length", type=int, default=0)
    parser.add_argument("--running-mode", default="in_memory")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--embedding-cache", default="")
    parser.add_argument("--day-two", type=json.loads, default=None)
    args = parser.parse_args(argv)
    def progress(node, state, seconds):
        print(f"finished: {node} {state} {seconds:.1f}", flush=True)

    summary = local_runner.run(config(args.root, args.users, args.max_history, args.min_length,
                                      args.running_mode, args.workers, args.embedding_cache,
                                      args.day_two),
                               progress=progress)
    print(json.dumps(summary, default=str))


if __name__ == "__main__":
    main(sys.argv[1:])
