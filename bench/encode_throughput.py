"""Text-encoding throughput of `ccfrec codes build`'s embedding step, in one run on one machine:
the Keras model's own graph in this process (the reference: what `codes build` ran before the
fused graph), the fused graph (`tf_ccfrec/text/bert_graph.py`) in this process (what
`--workers 0` does) and on 1 and 2 Beam RunInference DirectRunner worker processes, in float32
and bfloat16.

Usage (inside the environment):
    bin/env-run python bench/encode_throughput.py [--data ../shared/data/beauty] [--texts 3000]
        [--configs keras-float32 process-float32 ...] [--batch-tokens 4096 8192] [--repeats 3]

The texts are a seeded sample of the dataset's distinct view texts. Each configuration embeds all
of them into an empty cache (`embeddings.embed_views`, as `codes build` calls it) and is timed
from the call to the vectors in hand, the workers' start and model loading included. Each line:
texts/s (and, in this process, the seconds to load the encoder and trace its graph, and the
rate after them), its ratio to the round's fastest keras-float32 run before it (the
configurations run in the order given), and the
cosine with the first float32 run's vectors (min, mean). The configurations (times each batch
size) run in turn, `--repeats` rounds, after one untimed model load; with several rounds, a
last line per configuration gives the medians. Results: docs/scale.md.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

CONFIGS = ("keras-float32", "keras-bfloat16", "process-float32", "beam1-float32", "beam2-float32",
           "process-bfloat16", "beam2-bfloat16")


def add_sample_arguments(parser: argparse.ArgumentParser, texts: int) -> None:
    """--data, --format and --texts: the dataset and the size of `sample_texts`' sample."""
    parser.add_argument("--data", default=os.path.join(os.path.dirname(REPO), "shared", "data",
                                                       "beauty"))
    parser.add_argument("--format", default="p5")
    parser.add_argument("--texts", type=int, default=texts)


def sample_texts(data_dir: str, format_name: str, count: int):
    """A seeded sample of `count` distinct non-empty view texts of a dataset."""
    import tf_ccfrec.compat  # noqa: F401

    from tf_ccfrec.data import readers

    data = readers.read(format_name, data_dir)
    distinct = sorted({text for item in data.items.values() for text in item.values() if text})
    rng = np.random.default_rng(0)
    return [distinct[i] for i in rng.choice(len(distinct), min(count, len(distinct)),
                                            replace=False)]


def run(config: str, batch_tokens, texts):
    """One configuration from an empty cache: (vectors float32 [len(texts), dim], its line)."""
    from tf_ccfrec.text import beam_embeddings, embeddings, encoder as encoder_lib

    items = {str(i): {"text": text} for i, text in enumerate(texts)}
    mode, precision = config.split("-")
    cache = tempfile.mkdtemp(prefix="ccfrec-encode-")
    try:
        started = time.perf_counter()
        options = {} if batch_tokens is None else {"batch_tokens": batch_tokens}
        encoder = embeddings.TextEncoder(encoder_lib.minilm_checkpoint_dir(),
                                         precision=precision,
                                         graph="keras" if mode == "keras" else "fused", **options)
        pipeline, threads, start = None, None, None
        if mode in ("keras", "process"):
            encoder.embed(["a first call traces the graph"])
            start = time.perf_counter() - started
        if mode.startswith("beam"):
            workers = int(mode[len("beam"):])
            pipeline = beam_embeddings.make_pipeline(beam_embeddings.direct_pipeline_args(workers))
            threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else None
        vectors = embeddings.embed_views(list(items), items, ["text"], encoder, cache_dir=cache,
                                         beam_pipeline=pipeline,
                                         worker_threads=threads)["vectors"][:, 0]
        seconds = time.perf_counter() - started
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    line = {"config": config, "texts": len(texts), "seconds": round(seconds, 1),
            "texts_per_second": round(len(texts) / seconds, 1),
            "batch_tokens": encoder.batch_tokens, "cpus": os.cpu_count()}
    if start is not None:  # the encoder loaded and its graph traced
        line.update({"start_seconds": round(start, 1), "texts_per_second_after_start":
                     round(len(texts) / (seconds - start), 1)})
    return vectors, line


def main():
    parser = argparse.ArgumentParser()
    add_sample_arguments(parser, texts=3000)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    parser.add_argument("--batch-tokens", type=int, nargs="+", default=[None],
                        help="padded tokens per encoder call; each configuration runs with each "
                             "(default: TextEncoder's)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="rounds over the configurations, in turn; with more than one, a "
                             "last line per configuration gives the medians")
    args = parser.parse_args()
    texts = sample_texts(args.data, args.format, args.texts)
    from tf_ccfrec.text import embeddings, encoder as encoder_lib

    # Untimed: the process's first model load and call pay one-time imports and set-up.
    embeddings.TextEncoder(encoder_lib.minilm_checkpoint_dir(), graph="keras").embed(["warm"])
    grid = [(config, tokens) for config in args.configs for tokens in args.batch_tokens]
    reference, rates = None, {}
    for repeat in range(args.repeats):
        baseline = None
        for config, tokens in grid:
            vectors, line = run(config, tokens, texts)
            if reference is None and config.endswith("float32"):
                reference = vectors
            if config == "keras-float32":  # the best batch size of the round so far
                baseline = max(baseline or 0.0, line["texts_per_second"])
            line["repeat"] = repeat
            if baseline is not None:
                line["vs_keras_float32"] = round(line["texts_per_second"] / baseline, 2)
            if reference is not None:
                cosine = np.sum(vectors * reference, axis=1)
                line.update({"cosine_min": round(float(cosine.min()), 5),
                             "cosine_mean": round(float(cosine.mean()), 5)})
            rates.setdefault((config, line["batch_tokens"]), []).append(line)
            print(json.dumps(line), flush=True)
    if args.repeats > 1:
        for (config, tokens), lines in rates.items():
            summary = {"config": config, "batch_tokens": tokens, "repeats": len(lines)}
            for key in ("texts_per_second", "texts_per_second_after_start", "vs_keras_float32"):
                if all(key in line for line in lines):
                    summary["median_" + key] = round(float(np.median([l[key] for l in lines])),
                                                     2)
            print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
