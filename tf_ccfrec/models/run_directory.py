"""A training run's directory (`ccfrec train --output DIR`): the names of its files, the model it
holds and its best weights. Training writes it; evaluation, export and `ccfrec catalog add` load
it.

    <run>/config.json          model, model_config, train_config, the data and codes it read
    <run>/checkpoints/         resumable checkpoints, and best_weights.npz
    <run>/item_ids.txt         the model's item order, one id a line (index i + 1 = line i)
    <run>/history.json         one entry per epoch
    <run>/metrics.json         the final validation and test metrics
    <run>/test_ranks.npz       each test example's 0-based full-ranking rank, in data order
"""

from __future__ import annotations

import os
from typing import Optional

from tf_ccfrec import storage
from tf_ccfrec.models.config import ModelConfig

MODELS = ("ccfrec", "sasrec")
BEST_WEIGHTS = "best_weights.npz"  # in <run>/checkpoints/
ITEM_ORDER = "item_ids.txt"


def ranks_file(split: str, exclude_history: bool = False) -> str:
    """The file name of a split's per-example ranks in a run directory: `<split>_ranks.npz`,
    `<split>_ranks_excluding_history.npz` with the history items left out of the ranking."""
    return f"{split}_ranks{'_excluding_history' if exclude_history else ''}.npz"


def build_model(name: str, config: ModelConfig, artifact, seed: int = 0):
    """A CCFRec or SASRec model over the items of a code artifact."""
    if name == "ccfrec":
        from tf_ccfrec.models.ccfrec import CCFRecModel

        return CCFRecModel(config, artifact.codes, artifact.view_vectors,
                           codebook_size=artifact.config.codebook_size, seed=seed,
                           item_ids=artifact.item_ids)
    if name == "sasrec":
        from tf_ccfrec.models.sasrec import SASRecModel

        return SASRecModel(config, len(artifact.item_ids))
    raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")


def save_best_weights(model, checkpoint_dir: str) -> None:
    """Writes every weight of `model` to `<checkpoint_dir>/best_weights.npz`."""
    storage.save_npz(storage.join(checkpoint_dir, BEST_WEIGHTS),
                     **{f"arr_{i}": w.numpy() for i, w in enumerate(model.weights)})


def load_best_weights(model, checkpoint_dir: str) -> None:
    """Sets `model`'s weights (built already) from `<checkpoint_dir>/best_weights.npz`."""
    saved = storage.load_npz(storage.join(checkpoint_dir, BEST_WEIGHTS))
    model.set_weights([saved[f"arr_{i}"] for i in range(len(saved))])


def run_codes(model_dir: str, codes_dir: str):
    """The code artifact at `codes_dir` in the item order of the run at `model_dir`."""
    from tf_ccfrec.codes import artifact as artifact_lib

    artifact = artifact_lib.load(codes_dir)
    order = os.path.join(model_dir, ITEM_ORDER)
    if storage.exists(order):  # runs whose item order is not the artifact's (TFX Trainer runs)
        artifact = artifact_lib.reorder(artifact, storage.read_bytes(order).decode().splitlines())
    return artifact


def load_run(model_dir: str, codes_dir: Optional[str] = None):
    """(model with its best weights, run config) of a training run directory; the config's
    "item_ids" holds the model's item order."""
    import tensorflow as tf

    run = storage.read_json(storage.join(model_dir, "config.json"))
    artifact = run_codes(model_dir, codes_dir or run["codes"])
    config = ModelConfig(**run["model_config"])
    model = build_model(run["model"], config, artifact)
    history = tf.zeros([1, config.max_history], tf.int32)
    model.compute_loss({"history": history + 1, "target": tf.ones([1], tf.int32)})
    load_best_weights(model, os.path.join(model_dir, "checkpoints"))
    run["item_ids"] = artifact.item_ids
    return model, run
