"""Writing the SavedModel (`ccfrec export`): the signatures of `RetrievalModule` plus the ScaNN
index in `assets.extra/scann/` and TF Serving's warm-up requests in
`assets.extra/tf_serving_warmup_requests`, staged and moved into place with a completion marker (`tf_ccfrec.storage`), so that a
serving directory, local or on an object store, never holds a half-written version that a
reader would take."""

from __future__ import annotations

import os
from typing import Dict, Optional

import numpy as np

from tf_ccfrec import storage
from tf_ccfrec.export import scann_index, warmup

EXPORT_INFO = os.path.join("assets.extra", "ccfrec.json")


def export(model, item_ids, popularity: np.ndarray, output_dir: str, top_k: int = 100,
           with_scann: bool = True, overwrite: bool = False,
           info: Optional[dict] = None, id_lookup=None, sampled_negatives: int = 100,
           seed: int = 0, sampled_protocol: str = "unseen") -> str:
    """Exports a trained model to `output_dir` (e.g. `<base>/<name>/<version>`).

    Args:
      model: a trained `SequentialRetrievalModel`.
      item_ids: the catalog's ids in index order.
      popularity: int [num_items + 1], training interactions.
      top_k: items per `serving_default` answer.
      with_scann: also write the ScaNN index.
      info: extra facts recorded in `assets.extra/ccfrec.json`.
      id_lookup, sampled_negatives, seed, sampled_protocol: see `RetrievalModule`.

    Returns:
      output_dir.
    """
    from tf_ccfrec.export.serving_module import RetrievalModule

    table = model.item_vectors(training=False)
    # The encoder reads the item vectors themselves unless the model says otherwise.
    history = (None if model.config.history_vector == "paper"
               else model.history_table(table).numpy())
    module = RetrievalModule(model.encoder, table.numpy(),
                             list(item_ids), popularity, model.config.temperature,
                             model.config.max_history, top_k, id_lookup=id_lookup,
                             sampled_negatives=sampled_negatives, seed=seed,
                             history_vectors=history,
                             similarity=model.config.similarity,
                             sampled_protocol=sampled_protocol)
    return write_module(module, item_ids, output_dir, with_scann, overwrite, info)


def write_module(module, item_ids, output_dir: str, with_scann: bool = True,
                 overwrite: bool = False, info: Optional[dict] = None,
                 extra_json: Optional[Dict[str, object]] = None) -> str:
    """Writes a `RetrievalModule` as a version directory: the SavedModel, its warm-up records,
    the ScaNN index (`with_scann`), `assets.extra/ccfrec.json` (`info` added) and
    `assets.extra/<name>` for each of `extra_json`, staged and moved into place with its
    completion marker. Returns output_dir."""
    import tensorflow as tf

    with storage.atomic_directory(output_dir, overwrite=overwrite) as staging:
        tf.saved_model.save(module, staging, signatures=module.signatures())
        warmup.write(staging, list(item_ids), module.max_history)
        if with_scann:
            scann_index.write(os.path.join(staging, scann_index.DIRECTORY),
                              module.unit_items().numpy(), list(item_ids))
        storage.write_json(os.path.join(staging, EXPORT_INFO), {
            **(info or {}), "items": len(item_ids), "top_k": module.top_k,
            "max_history": module.max_history, "temperature": module.temperature,
            "sampled_protocol": module.sampled_protocol,
            "scann": with_scann})
        for name, value in (extra_json or {}).items():
            storage.write_json(os.path.join(staging, "assets.extra", name), value)
    return output_dir


def export_run(model_dir: str, output_dir: str, top_k: int = 100, with_scann: bool = True,
               overwrite: bool = False) -> str:
    """Exports the best weights of a `ccfrec train` run."""
    from tf_ccfrec import ranking
    from tf_ccfrec.models.run_directory import load_run

    model, run = load_run(model_dir)
    popularity = ranking.training_interactions(run["prepared"], run["item_ids"])
    return export(model, run["item_ids"], popularity, output_dir, top_k, with_scann, overwrite,
                  info={"model": run["model"], "run": storage.absolute(model_dir)},
                  sampled_negatives=run["train_config"]["sampled_negatives"],
                  seed=run["train_config"]["seed"],
                  sampled_protocol=run["train_config"].get("sampled_protocol", "uniform"))


def load(path: str):
    """Loads an exported SavedModel. Models pushed by the TFX pipeline map item ids through the
    tf.Transform graph, which holds a tensorflow-text op (NormalizeUTF8); importing
    tensorflow_text registers it here, as TF Serving's model server has it linked in."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the TF Text ops)

    storage.check_complete(path, "the SavedModel")
    return tf.saved_model.load(path)


def version_directories(directory: str) -> Dict[int, str]:
    """{version: directory} of the `<version>/` directories under a model's directory (local
    or remote storage; {} when it does not exist)."""
    if not storage.isdir(directory):
        return {}
    names = [entry.rstrip("/") for entry in storage.listdir(directory)]
    return {int(name): storage.join(directory, name) for name in names
            if name.isdigit() and storage.isdir(storage.join(directory, name))}
