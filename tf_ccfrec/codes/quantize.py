"""Product and residual quantization with faiss."""

from __future__ import annotations

from typing import Dict

import numpy as np


def faiss_module():
    import faiss

    return faiss


def product_quantize(x: np.ndarray, num_codebooks: int, nbits: int, seed: int) -> Dict[str, np.ndarray]:
    """Product quantization of rows of `x` (the paper's default; faiss IndexPQ): k-means per
    sub-vector, and each row coded by the nearest centroid of each sub-vector in L2 distance
    (faiss' `ProductQuantizer.compute_codes`; the index's inner-product metric would only
    matter for searching it, which is not done here).

    Args:
      x: float32 [n, d]; d divisible by num_codebooks.
      num_codebooks: sub-quantizers (codes per row); sub-vector width d / num_codebooks.
      nbits: bits per code (codebook size 2**nbits).
      seed: k-means seed.

    Returns:
      {"codes": uint8 [n, num_codebooks], "codebooks": float32 [num_codebooks, 2**nbits, d_sub]}.
    """
    faiss = faiss_module()
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, d = x.shape
    if n < 2 ** nbits:
        raise ValueError(f"{n} items cannot train {2 ** nbits} centroids per codebook")
    index = faiss.IndexPQ(d, num_codebooks, nbits, faiss.METRIC_INNER_PRODUCT)
    index.pq.cp.seed = seed
    index.train(x)
    codes = unpack_codes(index.pq.compute_codes(x), num_codebooks, nbits)
    codebooks = faiss.vector_to_array(index.pq.centroids).reshape(
        num_codebooks, 2 ** nbits, d // num_codebooks)
    return {"codes": codes, "codebooks": codebooks.astype(np.float32)}


def residual_quantize(x: np.ndarray, levels: int, nbits: int, seed: int) -> Dict[str, np.ndarray]:
    """Residual quantization of each view separately (the release's alternative).

    Args:
      x: float32 [n, n_views, d].
      levels: residual levels per view (codes per view).
      nbits: bits per code.
      seed: k-means seed.

    Returns:
      {"codes": uint8 [n, n_views * levels] (view-major), "codebooks": float32
       [n_views, levels, 2**nbits, d]}.
    """
    faiss = faiss_module()
    n, views, d = x.shape
    if n < 2 ** nbits:
        raise ValueError(f"{n} items cannot train {2 ** nbits} centroids per codebook")
    codes = np.zeros((n, views * levels), np.uint8)
    codebooks = np.zeros((views, levels, 2 ** nbits, d), np.float32)
    for v in range(views):
        rq = faiss.ResidualQuantizer(d, levels, nbits)
        rq.cp.seed = seed
        view = np.ascontiguousarray(x[:, v], dtype=np.float32)
        rq.train(view)
        packed = rq.compute_codes(view)
        codes[:, v * levels:(v + 1) * levels] = unpack_codes(packed, levels, nbits)
        codebooks[v] = faiss.vector_to_array(rq.codebooks).reshape(levels, 2 ** nbits, d)
    return {"codes": codes, "codebooks": codebooks}


def unpack_codes(packed: np.ndarray, levels: int, nbits: int) -> np.ndarray:
    """faiss packs codes little-endian, nbits each; 8 bits are plain bytes."""
    if nbits == 8:
        return packed[:, :levels].astype(np.uint8)
    bits = np.unpackbits(packed, axis=1, bitorder="little")[:, : levels * nbits]
    weights = (1 << np.arange(nbits)).astype(np.uint16)
    return (bits.reshape(len(packed), levels, nbits) * weights).sum(-1).astype(np.uint8)
