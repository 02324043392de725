"""Prepared catalog -> text embeddings -> PCA -> PQ/RQ codes (`ccfrec codes build`)."""

from __future__ import annotations

import time
from typing import Any, Dict, Optional

import numpy as np

from tf_ccfrec import storage
from tf_ccfrec.codes import artifact as artifact_lib
from tf_ccfrec.codes.config import CodesConfig
from tf_ccfrec.codes.pca import whiten_views
from tf_ccfrec.codes.quantize import product_quantize, residual_quantize
from tf_ccfrec.codes.usage import code_usage


def quantize(view_vectors: np.ndarray, config: CodesConfig) -> Dict[str, np.ndarray]:
    """[n_items, n_views, pca_dim] -> {"codes", "codebooks"} by the configured method."""
    n, views, dim = view_vectors.shape
    if config.method == "pq":
        return product_quantize(view_vectors.reshape(n, views * dim),
                                views * config.codes_per_view, config.nbits, config.seed)
    return residual_quantize(view_vectors, config.codes_per_view, config.nbits, config.seed)


def codes_from_embeddings(item_ids, embeddings: np.ndarray, views, config: CodesConfig,
                          manifest: Optional[Dict[str, Any]] = None) -> artifact_lib.CodeArtifact:
    """Sentence embeddings [n_items, n_views, d] (an array, or `embeddings.IndexedViews`) -> a
    code artifact (PCA, then quantization)."""
    pca = whiten_views(embeddings, config.pca_dim, config.seed)
    quantized = quantize(pca["vectors"], config)
    usage = code_usage(quantized["codes"], config.codebook_size)
    arrays = {"item_ids": np.array(list(item_ids)), "codes": quantized["codes"],
              "view_vectors": pca["vectors"], "codebooks": quantized["codebooks"],
              "pca_mean": pca["mean"], "pca_components": pca["components"],
              "pca_scale": pca["scale"]}
    info = dict(manifest or {})
    info.update({"items": len(arrays["item_ids"]), "codes_per_item": int(quantized["codes"].shape[1]),
                 "usage": usage})
    return artifact_lib.CodeArtifact(config=config, views=list(views), arrays=arrays,
                                     manifest=info)


def codes_from_texts(item_ids, items: Dict[str, Dict[str, str]], views, config: CodesConfig,
                     encoder_dir: Optional[str] = None, cache_dir: Optional[str] = None,
                     progress: bool = False,
                     manifest: Optional[Dict[str, Any]] = None, precision: str = "float32",
                     beam_pipeline=None, worker_threads: Optional[int] = None,
                     encoder_graph: str = "fused") -> artifact_lib.CodeArtifact:
    """Item texts {item id: {view: text}} -> a code artifact: embeddings, PCA, quantization.

    Args:
      item_ids: the item order of the artifact.
      encoder_dir: the sentence encoder checkpoint (default all-MiniLM-L6-v2).
      cache_dir, beam_pipeline, worker_threads: see `embeddings.embed_views`.
      precision: the encoder's (`encoder.load_text_embedder`).
      encoder_graph: `embeddings.TextEncoder`'s graph.
    """
    from tf_ccfrec.text import embeddings, encoder as encoder_lib

    started = time.time()
    encoder = embeddings.TextEncoder(encoder_dir or encoder_lib.minilm_checkpoint_dir(),
                                     precision=precision, graph=encoder_graph)
    embedded = embeddings.embed_views(item_ids, items, views, encoder, cache_dir, progress,
                                      beam_pipeline, worker_threads, indexed=True)
    embed_seconds = time.time() - started
    started = time.time()
    artifact = codes_from_embeddings(item_ids, embedded["vectors"], views, config, manifest={
        **(manifest or {}),
        "encoder": {"checkpoint": encoder.checkpoint_dir, "fingerprint": encoder.fingerprint,
                    "dim": encoder.dim, "precision": precision, "graph": encoder.graph},
        "embedding": {k: v for k, v in embedded.items() if k != "vectors"},
    })
    artifact.manifest["seconds"] = {"embedding": round(embed_seconds, 1),
                                    "pca_and_quantization": round(time.time() - started, 1)}
    return artifact


def build_codes(prepared_dir: str, output_dir: str, config: CodesConfig,
                encoder_dir: Optional[str] = None, cache_dir: Optional[str] = None,
                overwrite: bool = False, progress: bool = False, precision: str = "float32",
                workers: int = 0) -> Dict[str, Any]:
    """Builds the code artifact of a prepared dataset's catalog; returns its manifest.

    `workers` > 0 embeds the texts the cache lacks with Beam RunInference on that many local
    worker processes (`tf_ccfrec.text.beam_embeddings`), each with its share of the cores;
    0 embeds them in this process."""
    from tf_ccfrec.data import prepare, tfrecords

    statistics = prepare.load_statistics(prepared_dir)
    views = statistics["views"]
    item_ids, items = tfrecords.read_catalog(prepared_dir, views)
    pipeline, threads = None, None
    if workers:
        import os

        from tf_ccfrec.text import beam_embeddings

        pipeline = beam_embeddings.make_pipeline(beam_embeddings.direct_pipeline_args(workers))
        threads = max(1, (os.cpu_count() or 1) // workers)
    artifact = codes_from_texts(item_ids, items, views, config, encoder_dir, cache_dir, progress,
                                manifest={"dataset": statistics.get("dataset"),
                                          "prepared": storage.absolute(prepared_dir)},
                                precision=precision, beam_pipeline=pipeline,
                                worker_threads=threads)
    artifact_lib.save(output_dir, artifact, overwrite=overwrite)
    return dict(artifact.manifest, config=vars(config), views=views)
