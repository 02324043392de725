"""Loading a trained run (`ccfrec train --output DIR`) for evaluation."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

from tf_ccfrec import storage
from tf_ccfrec.models.config import CCFRecConfig


def run_codes(model_dir: str, codes_dir: str):
    """The code artifact at `codes_dir` in the item order of the run at `model_dir`."""
    from tf_ccfrec.codes import artifact as artifact_lib
    from tf_ccfrec.training import train

    artifact = artifact_lib.load(codes_dir)
    order = os.path.join(model_dir, train.ITEM_ORDER)
    if storage.exists(order):  # runs whose item order is not the artifact's (TFX Trainer runs)
        artifact = artifact_lib.reorder(artifact, storage.read_bytes(order).decode().splitlines())
    return artifact


def load_run(model_dir: str, codes_dir: Optional[str] = None):
    """(model with its best weights, run config) of a training run directory."""
    import tensorflow as tf

    from tf_ccfrec.training import train

    run = storage.read_json(storage.join(model_dir, "config.json"))
    artifact = run_codes(model_dir, codes_dir or run["codes"])
    config = CCFRecConfig(**run["model_config"])
    model = train.build_model(run["model"], config, artifact)
    history = tf.zeros([1, config.max_history], tf.int32)
    model.compute_loss({"history": history + 1, "target": tf.ones([1], tf.int32)})
    train.load_best_weights(model, os.path.join(model_dir, "checkpoints"))
    run["item_ids"] = artifact.item_ids
    return model, run


def evaluate_run(model_dir: str, split: str = "test", data_dir: Optional[str] = None,
                 codes_dir: Optional[str] = None, sampled_negatives: int = 100,
                 exclude_history: bool = False,
                 sampled_protocol: Optional[str] = None,
                 write_ranks: bool = False) -> Dict[str, Any]:
    """The metrics `train` reports for a split (same seed, so the same sampled negatives;
    `sampled_protocol` default: the run's, "uniform" for runs from before the option).
    `write_ranks`: also (re)write the split's per-example ranks, `<model_dir>/<split>_ranks.npz`
    (`<split>_ranks_excluding_history.npz` with `exclude_history`), what
    `significance.paired_test` compares."""
    from tf_ccfrec.training import evaluation, inputs

    model, run = load_run(model_dir, codes_dir)
    prepared = data_dir or run["prepared"]
    data = inputs.make_dataset(prepared, split, run["item_ids"], 1024, model.config.max_history)
    head = evaluation.head_items(evaluation.training_interactions(prepared, run["item_ids"]))
    metrics = evaluation.evaluate(
        model, data, exclude_history=exclude_history, sampled_negatives=sampled_negatives,
        head=head, seed=run["train_config"]["seed"],
        sampled_protocol=sampled_protocol or run["train_config"].get("sampled_protocol",
                                                                     "uniform"),
        cold=evaluation.cold_items(prepared, run["item_ids"]), with_ranks=True)
    ranks = metrics.pop("ranks")
    if write_ranks:
        from tf_ccfrec import storage

        name = f"{split}_ranks{'_excluding_history' if exclude_history else ''}.npz"
        storage.save_npz(storage.join(model_dir, name), ranks=ranks)
    return {"model": run["model"], "split": split, **metrics}
