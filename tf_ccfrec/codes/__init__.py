"""Semantic codes: per-view PCA whitening, then product or residual quantization (ccfrec.md §2)."""
