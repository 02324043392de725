"""Per-view PCA with whitening."""

from __future__ import annotations

from typing import Dict

import numpy as np

CHUNK = 65536  # items per float64 block: memory beyond the input and output stays constant


def whiten_views(vectors: np.ndarray, dim: int, seed: int) -> Dict[str, np.ndarray]:
    """Fits PCA with whitening to each view separately.

    The components are the top eigenvectors of each view's d_in x d_in covariance, accumulated
    in float64 over blocks of CHUNK items, with scikit-learn's sign convention (the largest
    entry of each component positive): what `sklearn.decomposition.PCA(whiten=True,
    svd_solver="covariance_eigh")` fits, without its float64 copies of the whole view, so that a
    million items need only the input and the output in memory. On Office it gives the same
    codes as scikit-learn's full SVD, bit for bit.

    Args:
      vectors: float32 [n_items, n_views, d_in] sentence embeddings.
      dim: output dimension per view; at most min(n_items, d_in).
      seed: unused (the solver is exact); kept for the artifact's configuration.

    Returns:
      {"vectors": float32 [n_items, n_views, dim], "mean": [n_views, d_in],
       "components": [n_views, dim, d_in], "scale": [n_views, dim]} with
      vectors[:, v] = (x[:, v] - mean[v]) @ components[v].T / scale[v].
    """
    n, views, d_in = vectors.shape
    if dim > min(n, d_in):
        raise ValueError(f"PCA to {dim} dimensions needs at least {dim} items and input "
                         f"dimensions; have {n} items of dimension {d_in}")
    out = np.zeros((n, views, dim), np.float32)
    mean = np.zeros((views, d_in), np.float32)
    components = np.zeros((views, dim, d_in), np.float32)
    scale = np.zeros((views, dim), np.float32)
    for v in range(views):
        total = np.zeros(d_in)
        gram = np.zeros((d_in, d_in))
        for start in range(0, n, CHUNK):
            block = vectors[start:start + CHUNK, v].astype(np.float64)
            total += block.sum(axis=0)
            gram += block.T @ block
        centre = total / n
        covariance = (gram - n * np.outer(centre, centre)) / (n - 1)
        values, vectors_v = np.linalg.eigh(covariance)
        values, vectors_v = values[::-1], vectors_v[:, ::-1]
        values = np.maximum(values, 0.0)
        basis = vectors_v.T                                   # rows: components, largest first
        signs = np.sign(basis[np.arange(d_in), np.argmax(np.abs(basis), axis=1)])
        basis = basis * signs[:, np.newaxis]
        basis, values = basis[:dim], values[:dim]
        std = np.sqrt(values)
        for start in range(0, n, CHUNK):
            block = vectors[start:start + CHUNK, v].astype(np.float64)
            out[start:start + CHUNK, v] = ((block - centre) @ basis.T) / std
        mean[v], components[v], scale[v] = centre, basis, std
    return {"vectors": out, "mean": mean, "components": components, "scale": scale}
