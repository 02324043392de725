"""Codes for items the artifact was not built from: their sentence embeddings through the
artifact's frozen per-view PCA and its trained quantizer (PQ or RQ codebooks, with faiss, as
`ccfrec codes build` coded the catalog). Nothing is fitted again, so the codes of the catalog's
own items do not move."""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional

import numpy as np

from tf_ccfrec.codes.artifact import CodeArtifact
from tf_ccfrec.codes.quantize import faiss_module, unpack_codes


PROJECT_CHUNK = 4096  # items projected at a time (float64 intermediates stay small)


def project_views(artifact: CodeArtifact, embeddings: np.ndarray) -> np.ndarray:
    """Sentence embeddings float [n, n_views, d_encoder] -> PCA-whitened view vectors
    float32 [n, n_views, pca_dim]: (x[:, v] - mean[v]) @ components[v].T / scale[v]."""
    mean = artifact.arrays["pca_mean"].astype(np.float64)
    components = artifact.arrays["pca_components"].astype(np.float64)
    scale = artifact.arrays["pca_scale"].astype(np.float64)
    views = len(artifact.views)
    if embeddings.ndim != 3 or embeddings.shape[1:] != (views, mean.shape[1]):
        raise ValueError(f"embeddings of shape {embeddings.shape}; the artifact's PCA takes "
                         f"[n, {views}, {mean.shape[1]}]")
    out = np.empty((embeddings.shape[0], views, components.shape[1]), np.float32)
    for start in range(0, embeddings.shape[0], PROJECT_CHUNK):  # float64 a chunk at a time
        x = embeddings[start:start + PROJECT_CHUNK].astype(np.float64) - mean[np.newaxis]
        out[start:start + PROJECT_CHUNK] = np.einsum("nvd,vkd->nvk", x, components) \
            / scale[np.newaxis]
    return out


def quantize_views(artifact: CodeArtifact, view_vectors: np.ndarray) -> np.ndarray:
    """PCA-whitened view vectors float [n, n_views, pca_dim] -> codes uint8 [n, n_codes]
    (view-major, as the artifact's), with the artifact's codebooks."""
    faiss = faiss_module()
    config, codebooks = artifact.config, artifact.arrays["codebooks"]
    n, views, dim = view_vectors.shape
    if config.method == "pq":
        x = np.ascontiguousarray(view_vectors.reshape(n, views * dim), np.float32)
        quantizer = faiss.ProductQuantizer(views * dim, codebooks.shape[0], config.nbits)
        faiss.copy_array_to_vector(np.ascontiguousarray(codebooks, np.float32).ravel(),
                                   quantizer.centroids)
        return unpack_codes(quantizer.compute_codes(x), codebooks.shape[0], config.nbits)
    levels = config.codes_per_view
    codes = np.zeros((n, views * levels), np.uint8)
    for v in range(views):
        quantizer = faiss.ResidualQuantizer(dim, levels, config.nbits)
        faiss.copy_array_to_vector(np.ascontiguousarray(codebooks[v], np.float32).ravel(),
                                   quantizer.codebooks)
        quantizer.is_trained = True
        view = np.ascontiguousarray(view_vectors[:, v], np.float32)
        codes[:, v * levels:(v + 1) * levels] = unpack_codes(quantizer.compute_codes(view), levels,
                                                        config.nbits)
    return codes


def encode_embeddings(artifact: CodeArtifact, embeddings: np.ndarray) -> Dict[str, np.ndarray]:
    """Sentence embeddings [n, n_views, d_encoder] -> {"view_vectors" float32 [n, n_views,
    pca_dim], "codes" uint8 [n, n_codes]} with the artifact's frozen PCA and codebooks."""
    view_vectors = project_views(artifact, embeddings)
    return {"view_vectors": view_vectors, "codes": quantize_views(artifact, view_vectors)}


def encode_texts(artifact: CodeArtifact, item_ids, items: Dict[str, Dict[str, str]],
                 catalog_texts: Optional[Dict[str, Dict[str, str]]] = None, encoder_dir=None,
                 cache_dir=None, progress: bool = False, beam_pipeline=None,
                 worker_threads: Optional[int] = None) -> Dict[str, object]:
    """Item texts {item id: {view: text}} -> {"view_vectors", "codes"} (in `item_ids` order)
    and the embedding counts, through the artifact's sentence encoder at the artifact's
    precision (through the embedding cache), frozen PCA and codebooks.

    Args:
      catalog_texts: the texts the artifact was built from ({item id: {view: text}} of its
        items). A view text equal to one of theirs takes that item's view vector as it is, so
        an item with an existing item's texts gets exactly that item's codes (projecting the
        same embedding again can differ in the last bits, which can move a code where a view
        has few distinct texts).
      beam_pipeline, worker_threads: as for `embeddings.embed_views` (the texts the cache lacks
        embedded by the pipeline's workers; None: in this process).

    Raises:
      ValueError: the encoder is not the artifact's, or an item lacks one of its views.
    """
    from tf_ccfrec.text import embeddings, encoder as encoder_lib

    for item in item_ids:
        missing = [view for view in artifact.views if view not in items.get(item, {})]
        if missing:
            raise ValueError(f"item {item!r}: no text for the views {missing} (the codes "
                             f"have views {artifact.views})")
    built_with = artifact.manifest.get("encoder", {})
    # Artifacts from before the fused graph record no graph: theirs was the Keras model's.
    encoder = embeddings.TextEncoder(encoder_dir or encoder_lib.minilm_checkpoint_dir(),
                                     precision=built_with.get("precision", "float32"),
                                     graph=built_with.get("graph", "keras"))
    expected = built_with.get("fingerprint")
    if expected and expected != encoder.fingerprint:
        raise ValueError(f"the sentence encoder at {encoder.checkpoint_dir} is not the one the "
                         f"codes were built with (fingerprint {encoder.fingerprint}, the "
                         f"artifact's {expected})")
    embedded = embeddings.embed_views(list(item_ids), items, artifact.views, encoder, cache_dir,
                                      progress, beam_pipeline=beam_pipeline,
                                      worker_threads=worker_threads)
    # The sentence embeddings are the largest array here: freed once projected.
    view_vectors = project_views(artifact, embedded.pop("vectors"))
    if catalog_texts:
        rows = {item: i for i, item in enumerate(artifact.item_ids)}
        for v, view in enumerate(artifact.views):
            known = {}
            for item, texts in catalog_texts.items():
                if item in rows:
                    known.setdefault(embeddings.text_key(texts.get(view, "")), rows[item])
            for i, item in enumerate(item_ids):
                row = known.get(embeddings.text_key(items[item][view]))
                if row is not None:
                    view_vectors[i, v] = artifact.view_vectors[row, v]
    return {"view_vectors": view_vectors, "codes": quantize_views(artifact, view_vectors),
            "embedded": embedded["embedded"], "cached": embedded["cached"]}


def recode(artifact: CodeArtifact, item_ids, items: Dict[str, Dict[str, str]],
           catalog_texts: Optional[Dict[str, Dict[str, str]]] = None, encoder_dir=None,
           cache_dir=None, manifest: Optional[Dict[str, object]] = None, beam_pipeline=None,
           worker_threads: Optional[int] = None) -> CodeArtifact:
    """The artifact of another catalog (`item_ids` with their `items` texts) under this
    artifact's frozen PCA and codebooks: the codes component's "encode with the existing
    codebooks" mode, so that a model trained on `artifact`'s codes reads the new ones.
    `catalog_texts`, `encoder_dir`, `cache_dir`, `beam_pipeline`, `worker_threads`: as for
    `encode_texts`."""
    from tf_ccfrec.codes.usage import code_usage

    coded = encode_texts(artifact, item_ids, items, catalog_texts, encoder_dir, cache_dir,
                         beam_pipeline=beam_pipeline, worker_threads=worker_threads)
    arrays = dict(artifact.arrays, item_ids=np.array(list(item_ids)), codes=coded["codes"],
                  view_vectors=coded["view_vectors"])
    info = {**artifact.manifest, **(manifest or {}), "items": len(item_ids),
            "usage": code_usage(coded["codes"], artifact.config.codebook_size),
            "encoded_with_existing_codebooks": {"embedded": coded["embedded"],
                                                "cached": coded["cached"]}}
    return dataclasses.replace(artifact, arrays=arrays, manifest=info)
