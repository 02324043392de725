"""Per-view PCA with whitening."""

from __future__ import annotations

from typing import Dict

import numpy as np


def whiten_views(vectors: np.ndarray, dim: int, seed: int) -> Dict[str, np.ndarray]:
    """Fits PCA with whitening to each view separately.

    Args:
      vectors: float32 [n_items, n_views, d_in] sentence embeddings.
      dim: output dimension per view; at most min(n_items, d_in).
      seed: random state of the solver.

    The components are the eigenvectors of the d_in x d_in covariance (sklearn's
    "covariance_eigh" solver, signs fixed as its SVD solvers fix them): one pass of X^T X over
    the items and no n x d_in factor, so time and memory grow with the items only through that
    product. On Office it gives the same codes as the full SVD, bit for bit.

    Returns:
      {"vectors": float32 [n_items, n_views, dim], "mean": [n_views, d_in],
       "components": [n_views, dim, d_in], "scale": [n_views, dim]} with
      vectors[:, v] = (x[:, v] - mean[v]) @ components[v].T / scale[v].
    """
    from sklearn.decomposition import PCA

    n, views, d_in = vectors.shape
    if dim > min(n, d_in):
        raise ValueError(f"PCA to {dim} dimensions needs at least {dim} items and input "
                         f"dimensions; have {n} items of dimension {d_in}")
    out = np.zeros((n, views, dim), np.float32)
    mean = np.zeros((views, d_in), np.float32)
    components = np.zeros((views, dim, d_in), np.float32)
    scale = np.zeros((views, dim), np.float32)
    for v in range(views):
        pca = PCA(n_components=dim, whiten=True, svd_solver="covariance_eigh", random_state=seed)
        out[:, v] = pca.fit_transform(vectors[:, v].astype(np.float64))
        mean[v] = pca.mean_
        components[v] = pca.components_
        scale[v] = np.sqrt(pca.explained_variance_)
    return {"vectors": out, "mean": mean, "components": components, "scale": scale}
