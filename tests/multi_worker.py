"""One training worker for test_multi_worker.py: `train.train` on a prepared dataset, under
MultiWorkerMirroredStrategy when --ports names the cluster (TF_CONFIG on 127.0.0.1), else on
one device.

    python -m tests.multi_worker OUTPUT PREPARED CODES [--index I --ports P0,P1]
        [--batch-size N] [--steps-per-epoch N] [--max-epochs N] [--budget-minutes M]
        [--learning-rate R] [--patience N] [--plateau-decays N]

Prints the training result as JSON on its last line, with "chief"."""

import argparse
import json
import os
import sys

import tf_ccfrec.compat  # noqa: F401  (before TensorFlow)

SMALL = dict(dim=16, ffn_dim=32, fusion_layers=1, sequence_layers=1, dropout=0.0)


def tf_config(ports, index):
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def main(argv):
    parser = argparse.ArgumentParser()
    for name in ("output", "prepared", "codes"):
        parser.add_argument(name)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--ports", default="")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps-per-epoch", type=int, default=None)
    parser.add_argument("--max-epochs", type=int, default=3)
    parser.add_argument("--budget-minutes", type=float, default=None)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--plateau-decays", type=int, default=0)
    args = parser.parse_args(argv)
    if args.ports:
        os.environ["TF_CONFIG"] = tf_config(args.ports.split(","), args.index)
    else:
        os.environ.pop("TF_CONFIG", None)

    from tf_ccfrec import distribute
    from tf_ccfrec.models.config import ModelConfig
    from tf_ccfrec.training import train

    config = train.TrainConfig(batch_size=args.batch_size, max_epochs=args.max_epochs,
                               steps_per_epoch=args.steps_per_epoch, warmup_steps=5,
                               patience=args.patience, time_budget_minutes=args.budget_minutes,
                               learning_rate=args.learning_rate,
                               plateau_decays=args.plateau_decays,
                               eval_batch_size=256, strategy="auto")
    result = train.train(args.prepared, args.codes, args.output, "ccfrec", ModelConfig(**SMALL),
                         config, verbose=0)
    import tensorflow as tf

    chief = distribute.is_chief(tf.distribute.get_strategy()) if not args.ports else \
        args.index == 0
    print(json.dumps({**result, "chief": chief}, default=str), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
