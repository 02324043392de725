"""The Trainer's `run_fn`: trains CCFRec (or a baseline) with `tf_ccfrec.training.train.train_model` on
Transform's output and exports the serving SavedModel, whose item lookups run the transform
graph, so it takes raw item ids.

`custom_config` (all optional):
    model:   "ccfrec" (default) or "sasrec"
    preset:  a `tf_ccfrec.training.presets` name (default "paper")
    model_config / train_config: field overrides of ModelConfig / TrainConfig
    top_k:   items per `serving_default` answer (default 100)
A hyperparameters artifact (e.g. from the Tuner) overrides both kinds of fields by name.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, Tuple

import tensorflow as tf

from tfx_pipeline.models import features


class TransformLookup(tf.Module):
    """Item id strings (any shape) -> int32 indices through the tf.Transform graph."""

    def __init__(self, tf_transform_output):
        super().__init__(name="transform_lookup")
        self.tft_layer = tf_transform_output.transform_features_layer()

    def __call__(self, ids: tf.Tensor) -> tf.Tensor:
        flat = tf.reshape(ids, [-1])
        n = tf.shape(flat, out_type=tf.int64)[0]
        rows = tf.SparseTensor(tf.stack([tf.range(n), tf.zeros([n], tf.int64)], axis=1), flat,
                               tf.stack([n, 1]))
        transformed = self.tft_layer({features.HISTORY: rows})[features.HISTORY_INDEX]
        dense = tf.sparse.to_dense(transformed, default_value=0)
        return tf.reshape(tf.cast(dense, tf.int32), tf.shape(ids))


def split_overrides(values: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Flat hyperparameters -> (ModelConfig overrides, TrainConfig overrides) by field name."""
    from tf_ccfrec.models.config import ModelConfig
    from tf_ccfrec.training.train import TrainConfig

    model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(values) - model_fields - train_fields
    if unknown:
        raise ValueError(f"unknown hyperparameters: {', '.join(sorted(unknown))}")
    return ({k: v for k, v in values.items() if k in model_fields},
            {k: v for k, v in values.items() if k in train_fields})


def configs(custom_config: Dict[str, Any], hyperparameters: Dict[str, Any] | None):
    """(ModelConfig, TrainConfig) from the Trainer's custom_config and hyperparameters."""
    from tf_ccfrec.training import presets

    model_overrides = dict(custom_config.get("model_config") or {})
    train_overrides = dict(custom_config.get("train_config") or {})
    if hyperparameters:
        # KerasTuner's HyperParameters.get_config() keeps the values under "values".
        values = hyperparameters.get("values", hyperparameters)
        tuned_model, tuned_train = split_overrides(values)
        model_overrides.update(tuned_model)
        train_overrides.update(tuned_train)
    # The preset's shared values for either model: the tuned SASRec presets
    # (`presets.MODEL_PRESETS`) train on whole sequences, which Transform's per-prefix examples
    # do not hold.
    return presets.configs(custom_config.get("preset", "paper"), model_overrides,
                           train_overrides)


def warm_start_run(base_model: str | None, model_name: str) -> str | None:
    """The training run whose best weights start this one: the base model's (the latest
    blessed model's `Format-Serving` export records it), for CCFRec only (no item-id table,
    so its weights fit any catalog coded with the same codebooks); None without a base model."""
    from tf_ccfrec import storage
    from tf_ccfrec.export import saved_model

    if not base_model:
        return None
    if model_name != "ccfrec":
        raise ValueError(f"warm start needs CCFRec ({model_name} keeps an item-id table "
                         "whose rows follow the vocabulary)")
    info = storage.read_json(storage.join(base_model, saved_model.EXPORT_INFO))
    return info["run"]


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (`CCFRecTrainer` adds `fn_args.codes_uri`)."""
    import tensorflow_transform as tft

    from tf_ccfrec import distribute
    from tf_ccfrec.codes import artifact as artifact_lib
    from tf_ccfrec.export import saved_model
    from tf_ccfrec.training import train
    from tfx_pipeline.models.transformed_data import TransformedData

    custom = dict(fn_args.custom_config or {})
    model_config, train_config = configs(custom, fn_args.hyperparameters)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    item_ids = [v.decode() if isinstance(v, bytes) else v for v in
                tf_transform_output.vocabulary_by_name(features.ITEM_VOCABULARY)]
    artifact = artifact_lib.reorder(artifact_lib.load(fn_args.codes_uri), item_ids)
    if "dim" not in (custom.get("model_config") or {}):
        # The fusion's width is the view vectors' (PCA) width; follow the codes component's.
        model_config = dataclasses.replace(model_config, dim=int(artifact.view_vectors.shape[-1]))
    # train_files: ["<transformed_examples>/Split-train/*"].
    examples_uri = os.path.dirname(os.path.dirname(fn_args.train_files[0]))
    data = TransformedData(examples_uri, item_ids, model_config.max_history)
    model_name = custom.get("model", "ccfrec")
    warm_start = warm_start_run(fn_args.base_model, model_name)
    result, model = train.train_model(data, artifact, fn_args.model_run_dir, model_name, model_config,
                              train_config, verbose=2, codes_dir=fn_args.codes_uri,
                              initial_weights=warm_start)
    print({"valid": result["valid"], "test": result["test"]}, flush=True)
    # On several workers (Vertex AI Training) only the chief exports to the model artifact;
    # the others export to a scratch directory (saving may run collectives) and delete it.
    with distribute.worker_directory(fn_args.serving_model_dir,
                                     model.distribute_strategy) as export_dir:
        saved_model.export(
            model, item_ids, data.interactions(), export_dir,
            top_k=int(custom.get("top_k", 100)), overwrite=True,
            info={"model": model_name, "run": fn_args.model_run_dir,
                  "transform_graph": fn_args.transform_output, "warm_start": warm_start},
            id_lookup=TransformLookup(tf_transform_output),
            sampled_negatives=train_config.sampled_negatives, seed=train_config.seed,
            sampled_protocol=train_config.sampled_protocol)
