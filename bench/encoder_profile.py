"""Where the sentence encoder's time goes, by TensorFlow op type: the Keras model's graph against
the fused graph (`tf_ccfrec/text/bert_graph.py`), from a TensorFlow profiler trace.

Usage (inside the environment):
    bin/env-run python bench/encoder_profile.py [--texts 1500] [--graphs keras fused]
        [--precision bfloat16] [--top 8]

For each graph: one untimed pass over the texts (a seeded sample of Beauty's distinct view
texts, as `bench/encode_throughput.py` draws them), then one traced pass. Prints one JSON line per
graph: the kernels' total seconds and the top op types with their share of it (`ops`), and the
share of the elementwise kernels (everything but products, softmax, transposes and gathers).
With several threads kernels overlap, so TF_NUM_INTRAOP_THREADS=1 gives the cleanest split.
Results: docs/scale.md.
"""

import argparse
import collections
import glob
import json
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# Op types that are not elementwise: products, attention's softmax, layout and lookups.
NOT_ELEMENTWISE = ("MatMul", "Einsum", "Softmax", "Transpose", "Gather")


def op_seconds(trace_dir: str) -> collections.Counter:
    """Seconds per op type of the compute threads of a profiler trace."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    path = sorted(glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True))[-1]
    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    seconds = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                meta = plane.event_metadata[event.metadata_id]
                if meta.display_name:  # a kernel (its op type); executor events have none
                    seconds[meta.display_name] += event.duration_ps / 1e12
    return seconds


def main():
    from encode_throughput import add_sample_arguments, sample_texts

    parser = argparse.ArgumentParser()
    add_sample_arguments(parser, texts=1500)
    parser.add_argument("--graphs", nargs="+", default=["keras", "fused"],
                        choices=["keras", "fused"])
    parser.add_argument("--precision", default="bfloat16", choices=["float32", "bfloat16"])
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args()

    texts = sample_texts(args.data, args.format, args.texts)
    import tensorflow as tf

    from tf_ccfrec.text import embeddings, encoder as encoder_lib

    for graph in args.graphs:
        encoder = embeddings.TextEncoder(encoder_lib.minilm_checkpoint_dir(),
                                         precision=args.precision, graph=graph)
        encoder.embed(texts)
        with tempfile.TemporaryDirectory(prefix="ccfrec-profile-") as trace_dir:
            tf.profiler.experimental.start(trace_dir)
            encoder.embed(texts)
            tf.profiler.experimental.stop()
            seconds = op_seconds(trace_dir)
        total = sum(seconds.values())
        elementwise = sum(s for op, s in seconds.items()
                          if not any(name in op for name in NOT_ELEMENTWISE))
        print(json.dumps({
            "graph": graph, "precision": args.precision, "texts": len(texts),
            "intra_op_threads": os.environ.get("TF_NUM_INTRAOP_THREADS", "default"),
            "kernel_seconds": round(total, 3),
            "elementwise_share": round(elementwise / total, 3),
            "ops": {op: round(s / total, 3) for op, s in seconds.most_common(args.top)}}),
            flush=True)


if __name__ == "__main__":
    main()
