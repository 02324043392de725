"""The CCFRec retrieval model (ccfrec.md §3-§6): items are their semantic codes fused with their
text views; training adds masked code modeling and masked sequence alignment."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from tf_ccfrec.layers.code_embedding import CodeTokenEmbedding, codes_to_tokens
from tf_ccfrec.layers.code_masker import CodeMasker
from tf_ccfrec.layers.code_guided_fusion import CodeGuidedFusion
from tf_ccfrec.layers.hashed_id_embedding import HashedIdEmbedding, hashed_id_rows
from tf_ccfrec.layers.masked_code_modeling_loss import MaskedCodeModelingLoss
from tf_ccfrec.layers.symmetric_info_nce import SymmetricInfoNCE
from tf_ccfrec.layers.seeded_dropout import draw_seed
from tf_ccfrec.models.base import SequentialRetrievalModel
from tf_ccfrec.models.config import ModelConfig


# Parts a fusion over a number of items unknown while tracing is split into (see fuse_in_chunks).
DYNAMIC_CHUNKS = 16


class CCFRecModel(SequentialRetrievalModel):
    """CCFRec: code-guided item fusion, the causal sequence encoder, and the masked objectives;
    loss L_rec + lambda_MCM L_MCM + lambda_MSA L_MSA.

    Args:
      config: hyperparameters.
      codes: int [num_items, num_codes] semantic codes in item order.
      view_vectors: float [num_items, num_views, dim] frozen PCA-whitened view vectors.
      codebook_size: centroids per codebook.
      seed: seeds the code masker.
      item_ids: the items' id strings in item order; needed with `config.item_id_buckets`
        (the item-ID variant hashes them).

    Raises:
      ValueError: view vectors of another width than `config.dim`, or the item-ID variant
        without one id per item.
    """

    def __init__(self, config: ModelConfig, codes: np.ndarray, view_vectors: np.ndarray,
                 codebook_size: int = 256, seed: int | None = None,
                 item_ids: Sequence[str] | None = None, **kwargs):
        num_items, num_codes = codes.shape
        super().__init__(config, num_items, **kwargs)
        if view_vectors.shape[-1] != config.dim:
            raise ValueError(f"view vectors have dimension {view_vectors.shape[-1]}, the model "
                             f"{config.dim}; build codes with --pca-dim {config.dim}")
        self.item_id_embedding = None
        if config.item_id_buckets:
            if item_ids is None or len(item_ids) != num_items:
                raise ValueError(f"item_id_buckets needs the {num_items} items' ids, got "
                                 f"{'none' if item_ids is None else len(item_ids)}")
            # Row 0 (padding) has no id.
            self.id_rows = tf.constant(np.concatenate(
                [[0], hashed_id_rows(item_ids, config.item_id_buckets)]).astype(np.int32))
            self.item_id_embedding = HashedIdEmbedding(config.item_id_buckets, config.dim,
                                                       name="item_id_embedding")
            self.item_id_embedding(self.id_rows[:1])
        tokens = codes_to_tokens(codes, codebook_size).numpy()
        # Row 0 is the padding item: padding tokens and zero views.
        self.code_tokens = tf.constant(np.concatenate([np.zeros((1, num_codes), np.int32), tokens]))
        # One float32 staging copy (not concatenate + astype: two), freed once it is a constant.
        padded = np.zeros((num_items + 1,) + tuple(view_vectors.shape[1:]), np.float32)
        padded[1:] = view_vectors
        self.view_vectors = tf.constant(padded)
        del padded
        self.code_embedding = CodeTokenEmbedding(num_codes, codebook_size, config.dim,
                                                 name="code_embedding")
        self.fusion = CodeGuidedFusion(config.fusion_layers, config.dim, config.num_heads,
                                       config.ffn_dim, config.dropout, config.use_text,
                                       config.ffn_inner_dropout, name="fusion",
                                       dtype=config.precision)
        self.masker = CodeMasker(num_codes, codebook_size, self.code_embedding.mask_token,
                                 config.mask_prob, seed=seed, name="code_masker")
        self.mcm_loss = MaskedCodeModelingLoss(config.temperature, name="mcm")
        self.msa_loss = SymmetricInfoNCE(config.temperature, name="msa")
        # Built here, not on first use: tf.recompute_grad cannot create variables.
        self.fusion(self.code_embedding(self.code_tokens[:1]), self.view_vectors[:1])
        self._recomputed_fusion = tf.recompute_grad(self._seeded_fusion)

    def _seeded_fusion(self, embeddings, views, tokens, q, k, v, seed):
        return self.fusion(embeddings, views, training=True, seed=seed, tokens=tokens,
                           token_projections=(q, k, v))

    def fuse(self, tokens, views, training=None, seed=None, token_projections=None):
        """Code tokens [n, num_codes] + views [n, num_views, dim] -> (item vectors [n, dim],
        fusion outputs [n, num_codes, dim]), float32 whatever `config.precision` computes them
        in. In training the dropout masks come from `seed` (int [2]; None: a fresh one), and
        with `config.recompute` the fusion's activations are recomputed in the backward pass
        rather than kept. `token_projections`: `fusion.project_tokens` of the code-token table,
        when the caller fuses several parts (None: projected here)."""
        embeddings = self.code_embedding(tokens)
        if token_projections is None:
            token_projections = self.fusion.project_tokens(self.code_embedding.embeddings)
        if not training:
            outputs = self.fusion(embeddings, views, tokens=tokens,
                                  token_projections=token_projections)
        else:
            seed = draw_seed() if seed is None else seed
            fusion = self._recomputed_fusion if self.config.recompute else self._seeded_fusion
            outputs = fusion(embeddings, views, tokens, *token_projections, seed)
        return tuple(tf.cast(output, tf.float32) for output in outputs)

    def fuse_in_chunks(self, tokens, views, training=None):
        """`fuse` over at most `config.fusion_chunk` items at a time: the same outputs, and a
        chunk's activations stay in cache (and, recomputed, are all the backward pass holds at
        once). When n is unknown while tracing (the step's distinct items, its real history
        positions) it is split into `DYNAMIC_CHUNKS` parts of at least `fusion_chunk` items,
        the unneeded ones empty (tf.recompute_grad cannot run inside a loop). The code-token
        table is projected once for all chunks."""
        chunk = self.config.fusion_chunk
        count = tokens.shape[0]
        if not chunk or (count is not None and count <= chunk):
            return self.fuse(tokens, views, training=training)
        projections = self.fusion.project_tokens(self.code_embedding.embeddings)
        if count is not None:
            sizes = [min(chunk, count - start) for start in range(0, count, chunk)]
        else:
            count = tf.shape(tokens)[0]
            size = tf.maximum(chunk, (count + DYNAMIC_CHUNKS - 1) // DYNAMIC_CHUNKS)
            starts = tf.minimum(tf.range(DYNAMIC_CHUNKS) * size, count)
            sizes = tf.unstack(tf.minimum(starts + size, count) - starts)
        parts = [self.fuse(part_tokens, part_views, training=training,
                           token_projections=projections)
                 for part_tokens, part_views in zip(tf.split(tokens, sizes), tf.split(views, sizes))]
        return tuple(tf.concat(outputs, axis=0) for outputs in zip(*parts))

    def id_vectors(self, items):
        """The item-ID variant's term (`config.item_id_buckets` > 0) of item indices int [...]:
        float [..., dim], zeros at padding."""
        return self.item_id_embedding(tf.gather(self.id_rows, tf.cast(items, tf.int32)))

    def vectors_of(self, items, training=None):
        """Item indices int [n] (>= 1) -> the fused vectors of their codes and views, plus
        their `id_vectors` with the item-ID variant: float [n, dim]."""
        chunk, count = self.config.fusion_chunk, items.shape[0]
        if chunk and count is not None and count > chunk:
            # A known number of items (the whole catalog): each chunk's codes and views gathered
            # as it is fused, as `fuse_in_chunks` splits them; gathered at once, a million
            # items' views alone would take 2 GB.
            projections = self.fusion.project_tokens(self.code_embedding.embeddings)
            vectors = tf.concat([self.fuse(tf.gather(self.code_tokens, part),
                                           tf.gather(self.view_vectors, part), training=training,
                                           token_projections=projections)[0]
                                 for part in tf.split(items, [min(chunk, count - start) for start
                                                              in range(0, count, chunk)])], axis=0)
        else:
            tokens = tf.gather(self.code_tokens, items)
            views = tf.gather(self.view_vectors, items)
            vectors = self.fuse_in_chunks(tokens, views, training=training)[0]
        if self.item_id_embedding is None:
            return vectors
        return vectors + self.id_vectors(items)

    def encoder_inputs(self, item_vectors, items):
        """With `history_vector="release"` the encoder reads mean_j H_L[j] of a history item:
        its item vector less the mean of its code embeddings (zero for padding)."""
        if self.config.history_vector == "paper":
            return item_vectors
        items = tf.cast(items, tf.int32)
        codes = tf.reduce_mean(self.code_embedding(tf.gather(self.code_tokens, items)), axis=-2)
        return item_vectors - codes * tf.cast(items > 0, codes.dtype)[..., tf.newaxis]

    def masked_objectives(self, history, users, training=None):
        """(L_MCM, L_MSA) of one batch: mask the codes of the history items, fuse them again,
        predict the masked codes, and align the masked sequence with the clean one."""
        history = tf.cast(history, tf.int32)
        real = history > 0
        positions = tf.where(real)                                     # [m, 2]
        items = tf.gather_nd(history, positions)                       # [m]
        tokens = tf.gather(self.code_tokens, items)                    # [m, num_codes]
        masked, selected = self.masker(tokens, training=True)
        masked_vectors, hidden = self.fuse_in_chunks(masked, tf.gather(self.view_vectors, items),
                                                     training=training)
        mcm = self.mcm_loss(hidden, self.code_embedding.embeddings, tokens, selected)
        shape = tf.concat([tf.shape(history, out_type=tf.int64),
                           tf.constant([self.config.dim], tf.int64)], axis=0)
        if self.config.history_vector == "release":
            masked_vectors = tf.reduce_mean(hidden, axis=-2)
        if self.item_id_embedding is not None:  # the masked items keep their ids
            masked_vectors += self.id_vectors(items)
        sequence = tf.scatter_nd(positions, masked_vectors, shape)
        masked_users, _ = self.encoder(sequence, real, training=training)
        msa = self.msa_loss(users, masked_users)
        return mcm, msa

    def msa_weight(self):
        """lambda_MSA of the current step: 0 while the optimizer has taken fewer than
        `config.msa_warmup_steps` steps (and it is compiled), else `config.msa_weight`."""
        weight = tf.constant(self.config.msa_weight, tf.float32)
        if not self.config.msa_warmup_steps or self.optimizer is None:
            return weight
        started = self.optimizer.iterations >= self.config.msa_warmup_steps
        return weight * tf.cast(started, tf.float32)

    def auxiliary_loss(self, history, users, training=None):
        if not (self.config.mcm_weight or self.config.msa_weight):
            return 0.0
        mcm, msa = self.masked_objectives(history, users, training=training)
        return self.config.mcm_weight * mcm + self.msa_weight() * msa
