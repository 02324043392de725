"""How well the codes use their codebooks, and how often items share a code tuple."""

from __future__ import annotations

from typing import Dict

import numpy as np


def code_usage(codes: np.ndarray, codebook_size: int) -> Dict[str, object]:
    """Entropy and unused centroids per codebook, and the collision rate.

    Args:
      codes: int [n_items, n_codes].
      codebook_size: centroids per codebook.

    Returns:
      {"entropy_bits": per code position, "max_entropy_bits": log2(codebook_size),
       "unused_centroids": per code position, "collision_rate": share of items whose code
       tuple another item also has, "unique_code_tuples": count}.
    """
    n, c = codes.shape
    entropy, unused = [], []
    for j in range(c):
        counts = np.bincount(codes[:, j], minlength=codebook_size)
        p = counts[counts > 0] / n
        entropy.append(round(float(-(p * np.log2(p)).sum()), 4))
        unused.append(int((counts == 0).sum()))
    _, inverse, tuple_counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    colliding = int((tuple_counts[inverse.ravel()] > 1).sum())
    return {"entropy_bits": entropy, "max_entropy_bits": float(np.log2(codebook_size)),
            "unused_centroids": unused, "collision_rate": round(colliding / max(n, 1), 6),
            "unique_code_tuples": int(len(tuple_counts))}
