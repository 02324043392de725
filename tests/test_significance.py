"""The paired test of two runs over the same test examples, against NumPy and scipy's own."""

import math

import numpy as np
import pytest
from scipy import stats

from tf_ccfrec.training import significance


def test_paired_test_against_numpy_and_scipy():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 40, 500)
    b = np.where(rng.random(500) < 0.3, a + rng.integers(1, 10, 500), a)   # B no better
    result = significance.paired_test(a, b)
    gain = lambda r: np.where(r < 10, 1 / np.log2(r + 2), 0.0)  # noqa: E731
    diff = gain(a) - gain(b)
    assert result["ndcg@10_difference"] == pytest.approx(diff.mean())
    assert result["ndcg@10_standard_error"] == pytest.approx(diff.std(ddof=1) / math.sqrt(500))
    reference = stats.ttest_rel(gain(a), gain(b))
    assert result["t"] == pytest.approx(reference.statistic)
    assert result["t_p_value"] == pytest.approx(reference.pvalue)
    only_a = int(((a < 10) & (b >= 10)).sum())
    assert result["only_a_hits"] == only_a and result["only_b_hits"] == 0
    assert result["sign_p_value"] == pytest.approx(2 * 0.5 ** only_a)
    assert result["recall@10_a"] == pytest.approx(np.mean(a < 10))


def test_equal_runs_are_not_different():
    ranks = np.arange(100) % 30
    result = significance.paired_test(ranks, ranks)
    assert result["t_p_value"] == 1.0 and result["sign_p_value"] == 1.0
    assert result["ndcg@10_difference"] == 0.0


def test_unpaired_ranks_are_refused():
    with pytest.raises(ValueError, match="same length"):
        significance.paired_test(np.zeros(3, int), np.zeros(4, int))
