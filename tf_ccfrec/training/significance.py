"""Paired comparison of two models over the same test examples, from each run's per-example
full-ranking ranks (`<run>/test_ranks.npz`, written by training in the test split's order).

Per example, a model's NDCG@k is 1 / log2(rank + 2) when rank < k, else 0, and its hit@k is
rank < k (ranks 0-based, ties counted against the target). The tests are paired over examples:
the t-test on the per-example NDCG@k differences, and an exact two-sided sign test on hit@k
(McNemar's: only the examples one model hits and the other does not count).
"""

from __future__ import annotations

import math
from typing import Dict

import numpy as np


def ndcg_at(ranks: np.ndarray, k: int = 10) -> np.ndarray:
    """float [n]: per-example NDCG@k of 0-based ranks int [n]."""
    ranks = np.asarray(ranks)
    return np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)


def _t_two_sided(t: float, dof: int) -> float:
    from scipy import stats

    return float(2 * stats.t.sf(abs(t), dof))


def _sign_two_sided(wins: int, losses: int) -> float:
    from scipy import stats

    n = wins + losses
    return 1.0 if n == 0 else float(stats.binomtest(wins, n, 0.5).pvalue)


def paired_test(ranks_a: np.ndarray, ranks_b: np.ndarray, k: int = 10) -> Dict[str, float]:
    """Model A against model B on the same examples.

    Args:
      ranks_a, ranks_b: int [n], 0-based full-ranking ranks of the same n test examples in the
        same order.

    Returns:
      examples, ndcg@k of each, their mean difference (A - B) with its standard error, the
      paired t statistic and two-sided p-value; recall@k of each, the examples only A hits
      and only B hits, and the sign test's two-sided p-value.

    Raises:
      ValueError: rank arrays of different lengths.
    """
    ranks_a, ranks_b = np.asarray(ranks_a), np.asarray(ranks_b)
    if ranks_a.shape != ranks_b.shape or ranks_a.ndim != 1:
        raise ValueError(f"paired ranks must be two arrays of the same length, got "
                         f"{ranks_a.shape} and {ranks_b.shape}")
    n = len(ranks_a)
    diff = ndcg_at(ranks_a, k) - ndcg_at(ranks_b, k)
    sd = float(diff.std(ddof=1)) if n > 1 else 0.0
    se = sd / math.sqrt(n) if n else 0.0
    t = float(diff.mean() / se) if se > 0 else 0.0
    hit_a, hit_b = ranks_a < k, ranks_b < k
    only_a, only_b = int((hit_a & ~hit_b).sum()), int((hit_b & ~hit_a).sum())
    return {"examples": n,
            f"ndcg@{k}_a": float(ndcg_at(ranks_a, k).mean()),
            f"ndcg@{k}_b": float(ndcg_at(ranks_b, k).mean()),
            f"ndcg@{k}_difference": float(diff.mean()), f"ndcg@{k}_standard_error": se,
            "t": t, "t_p_value": _t_two_sided(t, n - 1) if se > 0 else 1.0,
            f"recall@{k}_a": float(hit_a.mean()), f"recall@{k}_b": float(hit_b.mean()),
            "only_a_hits": only_a, "only_b_hits": only_b,
            "sign_p_value": _sign_two_sided(only_a, only_b)}
