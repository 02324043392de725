"""The training options of `ccfrec train` and of the pipeline's Trainer (`ccfrec pipeline run`):
a preset, an ablation and overrides of their fields, added to a parser by `add_training_options`
and read back by `training_overrides`."""

from __future__ import annotations

import argparse

from tf_ccfrec.models.config import (HISTORY_VECTORS, LOSSES, OBJECTIVES, PRECISIONS,
                                     SIMILARITIES)

ABLATIONS = {"none": {}, "no-mcm": {"mcm_weight": 0.0}, "no-msa": {"msa_weight": 0.0},
             "no-text": {"use_text": False}}


# `ccfrec train` options: (flag destination, config field); unset options keep the preset's value.
MODEL_OPTIONS = ("dropout", "ffn_inner_dropout", "mcm_weight", "msa_weight", "msa_warmup_steps",
                 "loss", "num_negatives", "negatives_from", "history_negative_weight",
                 "history_vector", "objective", "similarity", "temperature", "dim",
                 "sequence_layers", "num_heads", "ffn_dim",
                 "max_history", "recompute", "precision", "item_id_buckets")
TRAIN_OPTIONS = ("batch_size", "learning_rate", "warmup_steps", "weight_decay", "patience",
                 "plateau_decays", "plateau_decay_factor", "seed",
                 "jit_compile", "strategy", "sampled_negatives", "sampled_protocol",
                 "exclude_history", "time_budget_minutes", "steps_per_epoch")


def training_overrides(args: argparse.Namespace):
    """(model config overrides, train config overrides) of the options `add_training_options`
    added and the user gave."""
    given = {k: v for k, v in vars(args).items() if v is not None}
    model_overrides = {k: given[k] for k in MODEL_OPTIONS if k in given}
    model_overrides.update(ABLATIONS[args.ablation])
    train_overrides = {k: given[k] for k in TRAIN_OPTIONS if k in given}
    if args.epochs is not None:
        train_overrides["max_epochs"] = args.epochs
    return model_overrides, train_overrides


def add_training_options(p: argparse.ArgumentParser, max_history: bool = True) -> None:
    """The training options of `ccfrec train` (and of the pipeline's Trainer): a preset, an
    ablation, and overrides of their fields; `training_overrides` reads them back.
    `max_history=False` leaves --max-history to the caller."""
    p.add_argument("--preset", default="paper",
                   help="named configuration (tf_ccfrec/training/presets.py): paper, fast, "
                        "beauty, office, yelp; options below override it")
    p.add_argument("--ablation", choices=tuple(ABLATIONS), default="none")
    p.add_argument("--loss", choices=LOSSES,
                   help="full softmax, sampled (in-batch + shared uniform negatives, logQ) or "
                        "uniform (each target against --num-negatives negatives of its own)")
    p.add_argument("--num-negatives", type=int)
    p.add_argument("--objective", choices=OBJECTIVES,
                   help="last: each prefix predicts its next item; all_positions: every "
                        "position of each user's training sequence predicts the next item")
    p.add_argument("--similarity", choices=SIMILARITIES,
                   help="cosine / temperature (default) or the plain dot product")
    p.add_argument("--temperature", type=float)
    p.add_argument("--dim", type=int, help="hidden size (CCFRec: the view vectors' dimension)")
    p.add_argument("--sequence-layers", type=int)
    p.add_argument("--num-heads", type=int)
    p.add_argument("--ffn-dim", type=int)
    p.add_argument("--negatives-from", choices=("catalog", "trained"),
                   help="sampled loss: draw the shared negatives from every catalog item "
                        "(default) or from the items with training interactions only (items "
                        "that arrive later are then never pushed down as negatives)")
    p.add_argument("--history-negative-weight", type=float,
                   help="sampled loss: each example's own history items are negatives of it too, "
                        "each counting as this many copies (default 0: not added)")
    p.add_argument("--mcm-weight", type=float)
    p.add_argument("--msa-weight", type=float)
    p.add_argument("--msa-warmup-steps", type=int,
                   help="train this many steps without masked sequence alignment first")
    p.add_argument("--history-vector", choices=HISTORY_VECTORS,
                   help="what the sequence encoder reads for a history item: paper (its item "
                        "vector) or release (the fusion output's mean only, as the authors' code)")
    p.add_argument("--item-id-buckets", type=int,
                   help="CCFRec's item-ID variant: also a learned embedding per item id, from "
                        "a table of this many rows shared by hashing (tells apart items with "
                        "identical text; default 0: none, the paper's)")
    p.add_argument("--dropout", type=float)
    p.add_argument("--ffn-inner-dropout", action=argparse.BooleanOptionalAction, default=None,
                   help="also drop out the feed-forward layers' inner activations (not in the "
                        "authors' release; the runs in docs/results.md were trained with it)")
    p.add_argument("--recompute", action=argparse.BooleanOptionalAction, default=None,
                   help="recompute the fusion's activations in the backward pass instead of "
                        "keeping them: half the memory of the paper configuration, 9-30%% slower")
    p.add_argument("--precision", choices=PRECISIONS,
                   help="the fusion's dtype policy; mixed_bfloat16 pays off only on CPUs with "
                        "AVX-512 BF16 or AMX (and on GPUs)")
    if max_history:
        p.add_argument("--max-history", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--warmup-steps", type=int)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--epochs", type=int)
    p.add_argument("--steps-per-epoch", type=int,
                   help="steps between validations (default: one pass over the data)")
    p.add_argument("--patience", type=int,
                   help="epochs without a better validation NDCG@10 before a plateau: early "
                        "stop, or a learning-rate decay while --plateau-decays are left")
    p.add_argument("--plateau-decays", type=int,
                   help="at a plateau, this many times: back to the best weights and the "
                        "learning rate times --plateau-decay-factor, instead of stopping "
                        "(default 0); raising it resumes a run that stopped at a plateau")
    p.add_argument("--plateau-decay-factor", type=float,
                   help="the learning rate's factor at each plateau decay (default 0.3)")
    p.add_argument("--time-budget-minutes", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--jit-compile", action="store_const", const=True, help="XLA train step")
    p.add_argument("--strategy",
                   help="tf.distribute strategy: auto (multi-worker from TF_CONFIG, mirrored on "
                        "several GPUs, else one device), default, mirrored, multi-worker")
