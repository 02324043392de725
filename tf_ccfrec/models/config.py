"""Model hyperparameters (ccfrec.md §3-§5), one dataclass for CCFRec and the SASRec baseline:
the fields CCFRec alone reads (fusion, codes, auxiliary losses) are ignored by SASRec."""

from __future__ import annotations

import dataclasses

LOSSES = ("full", "sampled", "uniform")
OBJECTIVES = ("last", "all_positions")
SIMILARITIES = ("cosine", "dot")
NEGATIVE_POOLS = ("catalog", "trained")
PRECISIONS = ("float32", "mixed_bfloat16")
HISTORY_VECTORS = ("paper", "release")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Model hyperparameters; the defaults are the paper's.

    Attributes:
      dim: hidden size d (the view vectors' PCA dimension).
      fusion_layers, sequence_layers, num_heads, ffn_dim: transformer sizes.
      dropout: dropout rate in fusion and sequence encoder.
      ffn_inner_dropout: also drop out the feed-forward layers' inner (ffn_dim-wide) activations,
        in fusion and sequence encoder. False as the authors' release (dropout after each
        sub-layer only); the runs in docs/results.md were trained with True.
      max_history: items of history the sequence encoder reads.
      temperature: tau of every cosine softmax.
      mcm_weight, msa_weight: lambda of masked code modeling and masked sequence alignment.
      msa_warmup_steps: optimizer steps trained without MSA (its weight 0) before lambda_MSA
        applies; 0 (the paper) uses it from the first step.
      mask_prob: probability that a code is selected for masking.
      loss: "full" (softmax over the whole catalog), "sampled" (in-batch targets plus
        `num_negatives` shared uniform negatives, with logQ correction) or "uniform" (each
        target against `num_negatives` uniform negatives of its own, a plain softmax over the
        1 + num_negatives: the sampled softmax of SASRec+SS and eSASRec, RecTools'
        CatalogUniformSampler; a negative that is the target itself is masked).
      num_negatives: shared negatives per step ("sampled"), negatives per target ("uniform").
      objective: "last" (each training example, a prefix of a user's sequence, predicts its
        next item from the last position) or "all_positions" (each user's whole training
        sequence is one example and every position predicts the item after it, through the
        causal mask: SASRec's original objective; the same targets, each sequence encoded once).
      similarity: "cosine" (cos(user, item) / temperature, the paper's) or "dot" (the plain
        inner product, no temperature: SASRec's). Training, evaluation and the export all score
        with it.
      negatives_from: where the sampled loss draws them (uniformly): "catalog" (every item) or
        "trained" (the items with at least one training interaction, `set_negative_pool`), so
        that an item no training example holds, such as one that arrives later (cold start),
        is never pushed down as a negative; its vector comes only from what its codes and
        text share with trained items.
      history_negative_weight: 0 (the paper) or the number of copies each of an example's own
        history items counts as among its sampled-loss negatives (1: once, as in the full
        softmax; more: a harder push away from the items the user vector is built from).
      history_vector: what the sequence encoder reads for a history item: "paper" (its item
        vector, mean_j H_L[j] + mean_j H0[j], as candidates are scored) or "release" (the
        authors' code: mean_j H_L[j] only, the code embeddings' mean left out; ccfrec.md §3).
      use_text: False drops the cross-attention to the view vectors (an ablation).
      item_id_buckets: 0 (the paper: no item-ID table) or B > 0: a variant that also adds to
        each item vector a learned embedding of its id, from a table of B rows that the ids
        share by hashing (TensorFlow's Fingerprint64 of the id string, modulo B; zeros at
        first, so training starts as plain CCFRec). It tells apart items whose texts, and so
        codes and views, are identical. Only the items of the training catalog have one: an
        item added to an export later (`ccfrec catalog add`) has its fused vector only.
      fusion_chunk: items fused per chunk when the catalog is fused (0: all at once). Same
        result; on CPU a chunk's activations stay in cache (docs/model.md).
      recompute: in training, keep only each fusion call's inputs for the backward pass and
        recompute its activations there (`tf.recompute_grad`; the same gradients, the dropout
        masks being seeded), instead of keeping every code token's activations.
      precision: the fusion's Keras dtype policy: "float32", or "mixed_bfloat16" (bfloat16
        matrix products on float32 variables; faster where the CPU has bfloat16 instructions,
        AVX-512 BF16 or AMX, much slower where it has not; docs/model.md).
    """

    dim: int = 128  # CCFRec: the view vectors' dimension; SASRec: any
    fusion_layers: int = 2
    sequence_layers: int = 2
    num_heads: int = 2
    ffn_dim: int = 512
    dropout: float = 0.1
    ffn_inner_dropout: bool = False
    max_history: int = 20
    temperature: float = 0.07
    mcm_weight: float = 0.3
    msa_weight: float = 0.5
    msa_warmup_steps: int = 0
    mask_prob: float = 0.5
    loss: str = "full"
    num_negatives: int = 4096
    objective: str = "last"
    similarity: str = "cosine"
    negatives_from: str = "catalog"
    history_negative_weight: float = 0.0
    history_vector: str = "paper"
    use_text: bool = True
    item_id_buckets: int = 0
    fusion_chunk: int = 1024
    recompute: bool = True
    precision: str = "float32"

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {SIMILARITIES}, got "
                             f"{self.similarity!r}")
        if self.objective == "all_positions" and self.history_negative_weight:
            raise ValueError("history_negative_weight applies to the last-position objective "
                             "only")
        if self.negatives_from not in NEGATIVE_POOLS:
            raise ValueError(f"negatives_from must be one of {NEGATIVE_POOLS}, got "
                             f"{self.negatives_from!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.history_vector not in HISTORY_VECTORS:
            raise ValueError(f"history_vector must be one of {HISTORY_VECTORS}, "
                             f"got {self.history_vector!r}")
        if self.history_negative_weight < 0:
            raise ValueError("history_negative_weight must be >= 0, got "
                             f"{self.history_negative_weight}")
        if self.item_id_buckets < 0:
            raise ValueError(f"item_id_buckets must be >= 0, got {self.item_id_buckets}")
        if self.msa_warmup_steps < 0:
            raise ValueError(f"msa_warmup_steps must be >= 0, got {self.msa_warmup_steps}")
        if self.dim % self.num_heads:
            raise ValueError(f"dim {self.dim} is not divisible by num_heads {self.num_heads}")
