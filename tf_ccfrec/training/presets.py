"""Named training configurations: `ccfrec train --preset NAME`, the TFX Trainer's
`custom_config["preset"]`. Explicit options override a preset's values.

- "paper": the paper's configuration (ccfrec.md §3-§5): full-catalog softmax, batch 400,
  lr 1e-3 with 500 warm-up steps, lambda_MCM 0.3, lambda_MSA 0.5, dropout 0.1; the fusion's
  activations recomputed in the backward pass (half the memory, 9% slower on Beauty).
- "fast": the configuration docs/results.md trains with on 2 CPU cores: the sampled softmax
  (in-batch targets + 1,024 shared uniform negatives, logQ-corrected), which fuses only the
  step's items instead of the whole catalog, lr 2e-3 with 100 warm-up steps; activations kept
  (recomputing them saves a fifth of the memory here and costs 29% of the speed).
- "beauty", "yelp": "fast", validating every 80 steps (32,000 examples) rather than once per
  pass, with two plateau decays (`TrainConfig.plateau_decays`: back to the best weights at the
  learning rate x0.3 at each of the first two plateaus), as the headline rows of
  docs/results.md train them (`bench/run_results.sh`). Yelp's CCFRec is the item-ID variant
  (`ModelConfig.item_id_buckets` 262,144) at lr 1e-3: plain CCFRec on Yelp never rose above its
  first validation, a last-item model; with item IDs (16,384 rows), after 8 epochs, test
  Recall@10 / NDCG@10 0.0482 / 0.0285 against 0.0268 / 0.0228 (docs/results.md, "Item-ID
  embeddings (Yelp)"). 262,144 rows, where 2% of the training interactions share a row with a
  more popular item instead of 24%, were level with 16,384 for 4 epochs and ahead on validation
  NDCG@10 at each of epochs 5-14 (0.0346 against 0.0321 at epoch 14; "Item-ID table size
  (Yelp)").
- "office": "fast", validating every 20 steps (8,000 examples, a fifth of a pass), with one
  plateau decay (which raised its test row from 0.1087 / 0.0549 to 0.1129 / 0.0570).
- For `ccfrec train --model sasrec` (`MODEL_PRESETS`), "office" is "sasrec-ss" with two
  plateau decays. "beauty" is the preset itself (the sampled softmax with 1,024 shared
  negatives, two plateau decays), which beat "sasrec-ss" on Beauty (test Recall@10 / NDCG@10
  0.0798 / 0.0458 over 3 seeds, 0.0791 / 0.0438 at the first plateau without decays, against
  0.0761 / 0.0358; best validation NDCG@10 0.058-0.059 against 0.0445); "yelp" is Beauty's
  SASRec, which beat "sasrec-ss" on Yelp too (test 0.0600 / 0.0380 over 3 seeds against 0.0569
  / 0.0364; seed 0's best validation 0.0644 / 0.0380 against 0.0590 / 0.0353). These are the
  tuned SASRec rows of docs/results.md's headline tables. The TFX Trainer keeps the shared
  values (its Transform output holds one example per prefix, not whole sequences).
- "sasrec-ss": the published SASRec with sampled softmax on Beauty (eSASRec, arXiv
  2508.06450, its repository's hyperparameter table): every position predicts the next item,
  each against 256 uniform negatives of its own, dot-product scores, d 64, 1 block, 1 head,
  feed-forward width d, dropout 0.2, history 50, batch 128, Adam at a constant 1e-3 (no warm-up,
  no weight decay), up to 200 epochs with patience 50 (docs/results.md, "Calibration").
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Tuple

from tf_ccfrec.models.config import ModelConfig

_FAST_MODEL = {"loss": "sampled", "num_negatives": 1024, "recompute": False}
_FAST_TRAIN = {"learning_rate": 2e-3, "warmup_steps": 100}
_LARGE = {**_FAST_TRAIN, "steps_per_epoch": 80, "plateau_decays": 2}
_SMALL = {**_FAST_TRAIN, "steps_per_epoch": 20}

_SASREC_SS_MODEL = {"objective": "all_positions", "loss": "uniform", "num_negatives": 256,
                    "similarity": "dot", "dim": 64, "sequence_layers": 1, "num_heads": 1,
                    "ffn_dim": 64, "dropout": 0.2, "max_history": 50, "recompute": False}
_SASREC_SS_TRAIN = {"batch_size": 128, "learning_rate": 1e-3, "warmup_steps": 0,
                    "weight_decay": 0.0, "max_epochs": 200, "patience": 50}

PRESETS: Dict[str, Tuple[Dict[str, Any], Dict[str, Any]]] = {
    "paper": ({}, {}),
    "fast": (_FAST_MODEL, _FAST_TRAIN),
    "beauty": (_FAST_MODEL, _LARGE),
    # Office's CCFRec: one plateau decay (docs/results.md, "Learning-rate decay at the plateau").
    "office": (_FAST_MODEL, {**_SMALL, "plateau_decays": 1}),
    # Yelp's CCFRec: the item-ID variant (docs/results.md, "Item-ID embeddings (Yelp)" and
    # "Item-ID table size (Yelp)").
    "yelp": ({**_FAST_MODEL, "item_id_buckets": 262144},
             {**_LARGE, "learning_rate": 1e-3}),
    "sasrec-ss": (_SASREC_SS_MODEL, _SASREC_SS_TRAIN),
}


# A dataset preset's values for one model where they differ from the preset's own: the best
# configuration found for it (docs/results.md, the headline tables).
MODEL_PRESETS: Dict[Tuple[str, str], Tuple[Dict[str, Any], Dict[str, Any]]] = {
    ("office", "sasrec"): (_SASREC_SS_MODEL, {**_SASREC_SS_TRAIN, "plateau_decays": 2}),
    # Yelp's SASRec is Beauty's tuned one, the sampled softmax with two plateau decays
    # (docs/results.md, "Beauty: the tuned SASRec" and "Yelp: SASRec's setting").
    ("yelp", "sasrec"): PRESETS["beauty"],
}


def configs(preset: str = "paper", model_overrides: Dict[str, Any] | None = None,
            train_overrides: Dict[str, Any] | None = None, model_name: str = "ccfrec"):
    """(ModelConfig, TrainConfig) of `preset` for `model_name` (its `MODEL_PRESETS` entry,
    where it has one, replaces the preset's values) with the overrides applied.

    Raises:
      ValueError: an unknown preset or field.
    """
    from tf_ccfrec.training.train import TrainConfig

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    model, training = MODEL_PRESETS.get((preset, model_name), PRESETS[preset])
    for cls, overrides in ((ModelConfig, model_overrides), (TrainConfig, train_overrides)):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(overrides or {}) - known
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields: {', '.join(sorted(unknown))}")
    return (ModelConfig(**{**model, **(model_overrides or {})}),
            TrainConfig(**{**training, **(train_overrides or {})}))
