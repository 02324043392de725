"""The untrained baselines against NumPy oracles: text nearest neighbours and popularity, with
the cold / warm and head / tail slices every evaluation reports."""

import numpy as np
import tensorflow as tf

from tf_ccfrec import ranking
from tf_ccfrec.training import evaluation, text_knn


def _dataset(histories, targets):
    return tf.data.Dataset.from_tensor_slices(
        {"history": tf.constant(histories, tf.int32),
         "target": tf.constant(targets, tf.int32)}).batch(2)


def test_text_knn_ranks_by_the_cosine_of_the_history_mean():
    rng = np.random.default_rng(0)
    table = np.concatenate([np.zeros((1, 8)), rng.standard_normal((12, 8))]).astype(np.float32)
    table[1:] /= np.linalg.norm(table[1:], axis=1, keepdims=True)
    histories = np.array([[0, 3, 5], [0, 0, 7], [2, 4, 6]])
    targets = np.array([1, 7, 12])
    scores, ranks = text_knn.ranking_function(table)(tf.constant(histories, tf.int32),
                                                     tf.constant(targets, tf.int32))
    users = table[histories].sum(axis=1)
    users /= np.linalg.norm(users, axis=1, keepdims=True)
    expected = users @ table[1:].T
    np.testing.assert_allclose(scores.numpy(), expected, rtol=1e-5, atol=1e-6)
    target_scores = expected[np.arange(3), targets - 1]
    np.testing.assert_array_equal(ranks.numpy(),
                                  (expected >= target_scores[:, None]).sum(axis=1) - 1)


def test_popularity_slices_by_cold_targets():
    counts = np.array([0, 5, 9, 1, 0, 3])  # items 1..5
    histories = [[1, 2], [2, 3], [3, 1], [1, 1]]
    targets = [2, 4, 5, 3]
    cold = np.array([False, False, False, False, True, False])  # item 4 was never trained on
    result = evaluation.popularity_metrics(counts, _dataset(histories, targets),
                                           cold=cold, head=ranking.head_items(counts))
    order = [2, 1, 5, 3, 4]  # by count, ties by index
    ranks = np.array([order.index(t) for t in targets])
    assert result["recall@5"] == 1.0 and result["examples"] == 4
    assert result["cold"]["examples"] == 1 and result["warm"]["examples"] == 3
    assert result["cold"]["ndcg@10"] == 1 / np.log2(ranks[1] + 2)
    assert result["warm"]["ndcg@10"] == np.mean(1 / np.log2(ranks[[0, 2, 3]] + 2))
