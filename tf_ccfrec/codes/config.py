"""Configuration of semantic-code building."""

from __future__ import annotations

import dataclasses

METHODS = ("pq", "rq")


@dataclasses.dataclass(frozen=True)
class CodesConfig:
    """How item text becomes semantic codes.

    Attributes:
      method: "pq": product quantization over the concatenated view vectors (the paper's
        default); "rq": residual quantization per view.
      pca_dim: per-view PCA output dimension (whitened); 128 in the paper.
      codes_per_view: PQ sub-quantizers per view (sub-vector width pca_dim / codes_per_view), or
        RQ levels per view. 4 in the paper.
      codebook_size: centroids per codebook, a power of two; 256 in the paper.
      seed: seeds PCA and k-means, so the same input gives the same codes.
    """

    method: str = "pq"
    pca_dim: int = 128
    codes_per_view: int = 4
    codebook_size: int = 256
    seed: int = 0

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.codebook_size < 2 or self.codebook_size & (self.codebook_size - 1):
            raise ValueError(f"codebook_size must be a power of two, got {self.codebook_size}")
        if self.codebook_size > 256:
            raise ValueError("codebook_size above 256 does not fit one byte per code")
        if self.method == "pq" and self.pca_dim % self.codes_per_view:
            raise ValueError(f"pca_dim {self.pca_dim} is not divisible by codes_per_view "
                             f"{self.codes_per_view}")

    @property
    def nbits(self) -> int:
        return self.codebook_size.bit_length() - 1
