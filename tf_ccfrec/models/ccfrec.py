"""The CCFRec retrieval model as a `tfrs.Model` (ccfrec.md §3-§6).

Item indices: 0 is padding, item i of the code artifact's order is index i + 1. Histories are
right-aligned (padding first) int [batch, max_history]; targets are int [batch] indices >= 1.

Where TFRS fits and where it does not:
- The model is a `tfrs.Model`: `compute_loss` returns L_rec + lambda_MCM L_MCM + lambda_MSA L_MSA and
  the base class supplies train_step/test_step.
- The sampled loss uses `tfrs.tasks.Retrieval` (in-batch targets plus shared negatives as
  candidates, accidental-hit removal, logQ correction): that is what the task computes.
- The full-catalog loss does not: `tfrs.tasks.Retrieval` labels candidate j as the positive of
  query j (an identity matrix), while here every query's positive is its own target among all
  catalog items. It is a sparse softmax cross-entropy over the catalog.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tf_ccfrec.layers.code_embedding import CodeTokenEmbedding, codes_to_tokens
from tf_ccfrec.layers.code_masker import CodeMasker
from tf_ccfrec.layers.fusion import CodeGuidedFusion
from tf_ccfrec.layers.objectives import MaskedCodeModelingLoss, SymmetricInfoNCE
from tf_ccfrec.layers.sequence_encoder import CausalSequenceEncoder
from tf_ccfrec.models.config import CCFRecConfig


def _normalize(x):
    return tf.math.l2_normalize(x, axis=-1)


class CCFRecModel(tfrs.Model):
    """CCFRec: code-guided item fusion, a causal sequence encoder, and the two masked objectives.

    Args:
      config: hyperparameters.
      codes: uint8/int [num_items, num_codes] semantic codes in item order.
      view_vectors: float [num_items, num_views, dim] frozen PCA-whitened view vectors.
      codebook_size: centroids per codebook.
      seed: seeds the code masker.
    """

    def __init__(self, config: CCFRecConfig, codes: np.ndarray, view_vectors: np.ndarray,
                 codebook_size: int = 256, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        num_items, num_codes = codes.shape
        if view_vectors.shape[-1] != config.dim:
            raise ValueError(f"view vectors have dimension {view_vectors.shape[-1]}, the model "
                             f"{config.dim}; build codes with --pca-dim {config.dim}")
        self.config = config
        self.num_items = num_items
        tokens = codes_to_tokens(codes, codebook_size).numpy()
        # Row 0 is the padding item: padding tokens and zero views.
        self.code_tokens = tf.constant(np.concatenate([np.zeros((1, num_codes), np.int32), tokens]))
        self.view_vectors = tf.constant(np.concatenate(
            [np.zeros((1,) + view_vectors.shape[1:], np.float32), view_vectors]).astype(np.float32))
        self.code_embedding = CodeTokenEmbedding(num_codes, codebook_size, config.dim,
                                                 name="code_embedding")
        self.fusion = CodeGuidedFusion(config.fusion_layers, config.dim, config.num_heads,
                                       config.ffn_dim, config.dropout, config.use_text,
                                       name="fusion")
        self.encoder = CausalSequenceEncoder(config.max_history, config.sequence_layers,
                                             config.dim, config.num_heads, config.ffn_dim,
                                             config.dropout, name="sequence_encoder")
        self.masker = CodeMasker(num_codes, codebook_size, self.code_embedding.mask_token,
                                 config.mask_prob, seed=seed, name="code_masker")
        self.mcm_loss = MaskedCodeModelingLoss(config.temperature, name="mcm")
        self.msa_loss = SymmetricInfoNCE(config.temperature, name="msa")
        self.retrieval = tfrs.tasks.Retrieval(temperature=config.temperature,
                                              remove_accidental_hits=True, name="retrieval")

    # -- towers -----------------------------------------------------------------------------

    def fuse(self, tokens, views, training=None):
        """Code tokens [n, num_codes] + views [n, num_views, dim] -> (item vectors [n, dim],
        fusion outputs [n, num_codes, dim])."""
        return self.fusion(self.code_embedding(tokens), views, training=training)

    def item_vectors(self, training=None):
        """Every catalog item through the fusion module: float [num_items + 1, dim], row 0 zero."""
        vectors, _ = self.fuse(self.code_tokens[1:], self.view_vectors[1:], training=training)
        return tf.concat([tf.zeros_like(vectors[:1]), vectors], axis=0)

    def user_vectors(self, history, item_table, training=None):
        """History indices [batch, length] -> user vectors [batch, dim], reading item vectors
        from `item_table` [num_items + 1, dim] (the catalog vectors of the same step)."""
        history = tf.cast(history, tf.int32)
        users, _ = self.encoder(tf.gather(item_table, history), history > 0, training=training)
        return users

    def call(self, features, training=None):
        """Scores of every catalog item for each history: float [batch, num_items]."""
        table = self.item_vectors(training=training)
        users = self.user_vectors(features["history"], table, training=training)
        return self.scores(users, table)

    def scores(self, users, item_table):
        """cos(user, item) / tau for every catalog item: float [batch, num_items]."""
        return tf.matmul(_normalize(users), _normalize(item_table[1:]),
                         transpose_b=True) / self.config.temperature

    # -- objectives -------------------------------------------------------------------------

    def recommendation_loss(self, users, item_table, targets, training=None):
        targets = tf.cast(targets, tf.int32)
        if self.config.loss == "full":
            logits = self.scores(users, item_table)
            return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=targets - 1, logits=logits))
        negatives = tf.random.uniform([self.config.num_negatives], 1, self.num_items + 1,
                                      dtype=tf.int32)
        candidates = tf.concat([targets, negatives], axis=0)
        # logQ: in-batch targets are drawn by popularity (their share of this batch), shared
        # negatives uniformly.
        batch = tf.shape(targets)[0]
        _, index, counts = tf.unique_with_counts(targets)
        in_batch_q = tf.cast(tf.gather(counts, index), tf.float32) / tf.cast(batch, tf.float32)
        uniform_q = tf.fill([self.config.num_negatives],
                            tf.cast(self.config.num_negatives / self.num_items, tf.float32))
        return self.retrieval(
            _normalize(users), _normalize(tf.gather(item_table, candidates)),
            candidate_sampling_probability=tf.concat([in_batch_q, uniform_q], axis=0),
            candidate_ids=candidates, compute_metrics=False)

    def masked_objectives(self, history, users, item_table, training=None):
        """(L_MCM, L_MSA) of one batch: mask the codes of the history items, fuse them again,
        predict the masked codes, and align the masked sequence with the clean one."""
        history = tf.cast(history, tf.int32)
        real = history > 0
        positions = tf.where(real)                                     # [m, 2]
        items = tf.gather_nd(history, positions)                       # [m]
        tokens = tf.gather(self.code_tokens, items)                    # [m, num_codes]
        masked, selected = self.masker(tokens, training=True)
        masked_vectors, hidden = self.fuse(masked, tf.gather(self.view_vectors, items),
                                           training=training)
        mcm = self.mcm_loss(hidden, self.code_embedding.embeddings, tokens, selected)
        shape = tf.concat([tf.shape(history, out_type=tf.int64),
                           tf.constant([self.config.dim], tf.int64)], axis=0)
        sequence = tf.scatter_nd(positions, masked_vectors, shape)
        masked_users, _ = self.encoder(sequence, real, training=training)
        msa = self.msa_loss(users, masked_users)
        return mcm, msa

    def compute_loss(self, features, training=False):
        table = self.item_vectors(training=training)
        users = self.user_vectors(features["history"], table, training=training)
        loss = self.recommendation_loss(users, table, features["target"], training=training)
        if self.config.mcm_weight or self.config.msa_weight:
            mcm, msa = self.masked_objectives(features["history"], users, table, training)
            loss += self.config.mcm_weight * mcm + self.config.msa_weight * msa
        return loss
