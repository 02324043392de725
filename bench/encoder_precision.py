"""Sentence-encoder throughput and fidelity by precision: float32 (what `ccfrec codes build` runs),
bfloat16 and int8 (Keras' post-training weight quantization), on a sample of Beauty's distinct
view texts, in one process.

Usage (inside the environment):
    bin/env-run python bench/encoder_precision.py [--data ../shared/data/beauty] [--texts 2000]
        [--precisions float32 bfloat16 int8]

Prints one JSON line per precision: texts/s (after an untimed warm-up batch), and the cosine of
each text's embedding with its float32 embedding (min, mean, 1st percentile). Results:
docs/scale.md.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    from encode_throughput import add_sample_arguments, sample_texts

    parser = argparse.ArgumentParser()
    add_sample_arguments(parser, texts=2000)
    parser.add_argument("--precisions", nargs="+", default=["float32", "bfloat16", "int8"])
    args = parser.parse_args()

    texts = sample_texts(args.data, args.format, args.texts)
    from tf_ccfrec.text import embeddings, encoder as encoder_lib

    reference = None
    for precision in args.precisions:
        encoder = embeddings.TextEncoder(encoder_lib.minilm_checkpoint_dir(), precision=precision)
        encoder.embed(texts[:64])
        started = time.perf_counter()
        vectors = encoder.embed(texts)
        seconds = time.perf_counter() - started
        if reference is None:
            reference = vectors
        cosine = np.sum(vectors * reference, axis=1) / (
            np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference, axis=1))
        print(json.dumps({"precision": precision, "texts": len(texts),
                          "texts_per_second": round(len(texts) / seconds, 1),
                          "cosine_min": round(float(cosine.min()), 5),
                          "cosine_p1": round(float(np.percentile(cosine, 1)), 5),
                          "cosine_mean": round(float(cosine.mean()), 5)}), flush=True)


if __name__ == "__main__":
    main()
