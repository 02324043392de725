"""What every sequential retrieval model here shares: the causal sequence encoder over item
vectors, cosine/tau scoring against the whole catalog, and the recommendation loss.

Item indices: 0 is padding, catalog item i is index i + 1. Histories are right-aligned (padding
first) int [batch, max_history]; targets are int [batch] indices >= 1.

Where TFRS fits and where it does not:
- Models are `tfrs.Model`s: `compute_loss` returns the objective and the base class supplies
  train_step/test_step, so `fit`, distribution strategies and callbacks work as usual.
- The sampled loss uses `tfrs.tasks.Retrieval` (in-batch targets plus shared negatives as
  candidates, accidental-hit removal, logQ correction): that is what the task computes.
- The full-catalog loss does not: `tfrs.tasks.Retrieval` labels candidate j as the positive of
  query j (an identity matrix), while here every query's positive is its own target among all
  catalog items. It is a sparse softmax cross-entropy over the catalog.

Distribution: every loss is a replica's share of the global mean (`distribute.replica_share`).
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_recommenders as tfrs

from tf_ccfrec.distribute import replica_share
from tf_ccfrec.layers.causal_sequence_encoder import CausalSequenceEncoder
from tf_ccfrec.models.config import ModelConfig


def own_history_cells(history):
    """Which of the batch's history cells each example scores as a negative: its own real cells,
    each distinct item once (its earliest cell).

    Args:
      history: int [batch, length], 0 padding.

    Returns:
      bool [batch, batch * length]: row b is true at cell b * length + l where history[b, l] is
      an item that does not occur at an earlier position l' < l of the same history.
    """
    length = tf.shape(history)[1]
    same = tf.equal(history[:, :, tf.newaxis], history[:, tf.newaxis, :])   # [batch, l, l']
    before = tf.linalg.band_part(tf.ones([length, length]), -1, 0) - tf.eye(length)
    repeated = tf.reduce_any(same & tf.cast(before, tf.bool), axis=2)
    cells = (history > 0) & ~repeated                                       # [batch, length]
    own = tf.cast(tf.eye(tf.shape(history)[0]), tf.bool)                    # [batch, batch]
    return tf.reshape(own[:, :, tf.newaxis] & cells[tf.newaxis], [tf.shape(history)[0], -1])


class SequentialRetrievalModel(tfrs.Model):
    """Base class: subclasses define `vectors_of` and may add `auxiliary_loss`."""

    def __init__(self, config: ModelConfig, num_items: int, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.num_items = num_items
        self.negative_pool = None  # int32 [n] item indices the sampled loss draws from
        self.encoder = CausalSequenceEncoder(config.max_history, config.sequence_layers,
                                             config.dim, config.num_heads, config.ffn_dim,
                                             config.dropout, config.ffn_inner_dropout,
                                             name="sequence_encoder")
        self.retrieval = tfrs.tasks.Retrieval(
            loss=tf.keras.losses.CategoricalCrossentropy(
                from_logits=True, reduction=tf.keras.losses.Reduction.NONE),
            temperature=config.temperature if config.similarity == "cosine" else None,
            remove_accidental_hits=True, name="retrieval")

    def vectors_of(self, items, training=None):
        """Item indices int [n] (>= 1) -> item vectors float [n, dim]."""
        raise NotImplementedError

    def set_negative_pool(self, indices) -> None:
        """The item indices (int [n], each in 1..num_items) the sampled loss draws its shared
        negatives from (`config.negatives_from` = "trained"); None: the whole catalog."""
        self.negative_pool = None if indices is None else tf.constant(indices, tf.int32)

    def draw_negatives(self, rows=None):
        """(uniform negatives, the size of the pool they come from): int32 [num_negatives]
        shared by the step, or [rows, num_negatives] (one set per scored target) for `rows`."""
        shape = [self.config.num_negatives] if rows is None else [rows, self.config.num_negatives]
        if self.negative_pool is None:
            return tf.random.uniform(shape, 1, self.num_items + 1, dtype=tf.int32), self.num_items
        size = int(self.negative_pool.shape[0])
        return tf.gather(self.negative_pool,
                         tf.random.uniform(shape, 0, size, dtype=tf.int32)), size

    def item_vectors(self, training=None):
        """Every catalog item's vector: float [num_items + 1, dim], row 0 the padding item."""
        vectors = self.vectors_of(tf.range(1, self.num_items + 1), training=training)
        return tf.concat([tf.zeros_like(vectors[:1]), vectors], axis=0)

    def encoder_inputs(self, item_vectors, items):
        """What the sequence encoder reads for history items: item vectors float [..., dim] of
        indices int [...] -> float [..., dim]; the item vectors themselves here."""
        return item_vectors

    def history_table(self, item_table):
        """`encoder_inputs` of every catalog row: float [num_items + 1, dim] (row 0 padding)."""
        return self.encoder_inputs(item_table, tf.range(tf.shape(item_table)[0]))

    def user_vectors(self, history, item_table, training=None):
        """History indices [batch, length] -> user vectors [batch, dim], reading item vectors
        from `item_table` [num_items + 1, dim] (the catalog vectors of the same step)."""
        history = tf.cast(history, tf.int32)
        inputs = self.encoder_inputs(tf.gather(item_table, history), history)
        users, _ = self.encoder(inputs, history > 0, training=training)
        return users

    def unit(self, vectors):
        """What scoring multiplies: unit vectors under cosine similarity, else `vectors`."""
        return tf.math.l2_normalize(vectors, axis=-1) if self.config.similarity == "cosine" else vectors

    def scale(self):
        """What inner products of `unit` vectors are divided by: tau, or 1 (dot)."""
        return self.config.temperature if self.config.similarity == "cosine" else 1.0

    def scored_items(self, item_table):
        """The catalog as scoring multiplies it: `unit` of item_table [num_items + 1, dim]'s
        rows 1.., float [num_items, dim]."""
        return self.unit(item_table[1:])

    def scores(self, users, item_table, scored_items=None):
        """cos(user, item) / tau (or user . item, `config.similarity`) for every catalog item:
        float [batch, num_items]. `scored_items`: `self.scored_items(item_table)`, when the
        caller scores many batches against the same table."""
        items = self.scored_items(item_table) if scored_items is None else scored_items
        return tf.matmul(self.unit(users), items, transpose_b=True) / self.scale()

    def call(self, features, training=None):
        """Scores of every catalog item for each history: float [batch, num_items]."""
        table = self.item_vectors(training=training)
        users = self.user_vectors(features["history"], table, training=training)
        return self.scores(users, table)

    def full_softmax_loss(self, users, item_table, targets):
        """L_rec over the whole catalog (this replica's share of the mean)."""
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.cast(targets, tf.int32) - 1, logits=self.scores(users, item_table))
        return replica_share(tf.reduce_sum(losses), tf.size(losses))

    def sampled_softmax_loss(self, users, targets, target_vectors, negatives, negative_vectors,
                             history=None, history_vectors=None, pool_size=None):
        """L_rec against the batch's targets plus shared uniform negatives, with logQ
        correction and accidental hits removed (this replica's share of the mean).

        Args:
          users: float [batch, dim]; targets: int [batch]; target_vectors: float [batch, dim].
          negatives: int [num_negatives]; negative_vectors: float [num_negatives, dim].
          pool_size: how many items the negatives were drawn from, uniformly (default the
            catalog's num_items).
          history, history_vectors: int [batch, length] (0 padding) and float
            [batch, length, dim], or None. Given (`config.history_negative_weight` > 0), each
            example's own history items are negatives of that example as well, each distinct
            item once and counting as `history_negative_weight` copies (1: what it is in the
            full softmax, where it is always there); a shared candidate that is in the
            example's history is masked for it, so no item is there twice.
        """
        batch = tf.shape(targets)[0]
        # logQ: each candidate's logit less the log of how many copies of it the step is
        # expected to draw, on one scale for both sources: an in-batch target, drawn by
        # popularity, as often as it occurs in the batch; a shared negative, drawn uniformly,
        # num_negatives / num_items times (so each stands for num_items / num_negatives items).
        # Both are divided by the number of candidates, a shift the softmax ignores, because
        # the task clips q to [1e-6, 1].
        _, index, counts = tf.unique_with_counts(targets)
        candidates = tf.cast(batch + tf.size(negatives), tf.float32)
        in_batch_q = tf.cast(tf.gather(counts, index), tf.float32) / candidates
        uniform_q = tf.fill(tf.shape(negatives), tf.cast(
            self.config.num_negatives / (pool_size or self.num_items), tf.float32)) / candidates
        ids = [targets, negatives]
        vectors = [target_vectors, negative_vectors]
        q = [in_batch_q, uniform_q]
        score_mask = None
        if history is not None:
            history = tf.cast(history, targets.dtype)
            shared = tf.concat(ids, axis=0)
            in_history = tf.reduce_any(tf.equal(history[:, :, tf.newaxis], shared), axis=1)
            own_target = tf.cast(tf.eye(batch, tf.size(shared)), tf.bool)
            ids.append(tf.reshape(history, [-1]))
            vectors.append(tf.reshape(history_vectors, [-1, tf.shape(history_vectors)[-1]]))
            q.append(tf.fill([tf.size(history)], 1.0 / self.config.history_negative_weight)
                     / candidates)
            score_mask = tf.concat(
                [~in_history | own_target, own_history_cells(history)], axis=1)
        losses = self.retrieval(
            self.unit(users), self.unit(tf.concat(vectors, axis=0)),
            candidate_sampling_probability=tf.concat(q, axis=0),
            candidate_ids=tf.concat(ids, axis=0), compute_metrics=False, score_mask=score_mask)
        return replica_share(tf.reduce_sum(losses), batch)

    def uniform_softmax_loss(self, users, targets, target_vectors, negatives,
                             negative_vectors):
        """L_rec of each target against negatives of its own (`config.loss` = "uniform"): a
        softmax over the target and its `num_negatives` negatives, a negative equal to the
        target masked out (this replica's share of the mean).

        Args:
          users: float [n, dim]; targets: int [n]; target_vectors: float [n, dim].
          negatives: int [n, num_negatives]; negative_vectors: float [n, num_negatives, dim].
        """
        users = self.unit(users)
        positive = tf.reduce_sum(users * self.unit(target_vectors), axis=-1, keepdims=True)
        negative = tf.einsum("nd,nkd->nk", users, self.unit(negative_vectors))
        negative = tf.where(tf.equal(negatives, targets[:, tf.newaxis]),
                            tf.cast(-1e9, negative.dtype), negative)
        logits = tf.concat([positive, negative], axis=1) / self.scale()
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.zeros_like(targets), logits=logits)
        return replica_share(tf.reduce_sum(losses), tf.size(losses))

    def auxiliary_loss(self, history, users, training=None):
        """Extra objectives added to L_rec; none by default."""
        return 0.0

    def compute_loss(self, features, training=False):
        """L_rec + auxiliary losses.

        `features["target"]` is int [batch] (`config.objective` "last": the item after each
        history) or int [batch, length] ("all_positions": the item after each history
        position, 0 where there is none), aligned with `features["history"]`. The full loss
        needs every item's vector; the sampled losses compute vectors only for the step's
        distinct items (history, targets, negatives)."""
        history = tf.cast(features["history"], tf.int32)
        targets = tf.cast(features["target"], tf.int32)
        every_position = targets.shape.rank == 2
        real = targets > 0 if every_position else None

        def outputs(history_vectors):
            """(last-position user vectors [batch, dim], the scored user vectors [n, dim])."""
            last, every = self.encoder(self.encoder_inputs(history_vectors, history),
                                       history > 0, training=training)
            return last, tf.boolean_mask(every, real) if every_position else last

        scored = tf.boolean_mask(targets, real) if every_position else targets   # [n]
        if self.config.loss == "full":
            table = self.item_vectors(training=training)
            users, scored_users = outputs(tf.gather(table, history))
            loss = self.full_softmax_loss(scored_users, table, scored)
        else:
            negatives, pool_size = self.draw_negatives(
                tf.size(scored) if self.config.loss == "uniform" else None)
            needed = tf.concat([tf.reshape(history, [-1]), scored, tf.reshape(negatives, [-1])],
                               axis=0)
            items, local = tf.unique(needed)
            vectors = self.vectors_of(tf.maximum(items, 1), training=training)
            vectors *= tf.cast(items > 0, vectors.dtype)[:, tf.newaxis]   # padding -> zeros
            cells, n = tf.size(history), tf.size(scored)
            history_vectors = tf.gather(vectors, tf.reshape(local[:cells], tf.shape(history)))
            users, scored_users = outputs(history_vectors)
            target_vectors = tf.gather(vectors, local[cells:cells + n])
            negative_vectors = tf.gather(
                vectors, tf.reshape(local[cells + n:], tf.shape(negatives)))
            if self.config.loss == "uniform":
                loss = self.uniform_softmax_loss(scored_users, scored, target_vectors, negatives,
                                                 negative_vectors)
            else:
                loss = self.sampled_softmax_loss(
                    scored_users, scored, target_vectors, negatives, negative_vectors,
                    *((history, history_vectors) if self.config.history_negative_weight
                      else (None, None)), pool_size=pool_size)
        return loss + self.auxiliary_loss(history, users, training=training)
