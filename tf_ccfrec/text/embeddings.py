"""Multi-view item text embeddings: one L2-normalized vector per view per item (ccfrec.md §1).

Texts are tokenized once, sorted by length and batched with dynamic padding (each batch is padded
to its own longest text, not to a fixed length), and run through the encoder inside one
`tf.function` whose input shapes are [None, None], so it is traced once. Identical texts are
embedded once. A cache keyed by the encoder's content hash and the text's hash keeps vectors
across runs, so unchanged items are never re-embedded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np

from tf_ccfrec import storage
from tf_ccfrec.text import encoder as encoder_lib

MAX_TOKENS = 256  # texts are truncated to this many tokens, [CLS] and [SEP] included


def encoder_fingerprint(checkpoint_dir: str) -> str:
    """A hash of every file in the checkpoint directory: the cache key of the encoder."""
    digest = hashlib.sha256()
    for name in storage.walk_files(checkpoint_dir):
        digest.update(name.encode() + b"\0")
        with storage.open_binary(storage.join(checkpoint_dir, name)) as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


class EmbeddingCache:
    """Vectors by text hash, stored as .npz shards under <root>/<encoder fingerprint>/.

    Each run that embeds new texts adds one shard, written whole (`storage.write_bytes`: a
    renamed temporary file locally, one upload on an object store), so concurrent runs and
    interrupted runs never leave a broken cache. The root may be any filesystem TensorFlow
    knows (a shared `gs://` cache for a team), or "" for none.
    """

    def __init__(self, root: str, fingerprint: str):
        self.directory = storage.join(root, fingerprint)
        self.vectors: Dict[str, np.ndarray] = {}
        if storage.isdir(self.directory):
            for name in storage.listdir(self.directory):
                if name.endswith(".npz") and not name.startswith("."):
                    shard = storage.load_npz(storage.join(self.directory, name))
                    self.vectors.update(zip(shard["keys"].tolist(), shard["vectors"]))

    def add(self, keys: List[str], vectors: np.ndarray) -> None:
        write_shard(self.directory, keys, vectors)
        self.vectors.update(zip(keys, vectors))


def write_shard(directory: str, keys: List[str], vectors: np.ndarray) -> None:
    """Writes one cache shard, `keys` (text keys) with their `vectors` float [len(keys), dim],
    under `directory` (`<cache root>/<encoder fingerprint>`), named by a hash of the keys and
    written whole: writers need no lock, and the same texts give the same file."""
    if not keys:
        return
    name = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16] + ".npz"
    storage.save_npz(storage.join(directory, name), keys=np.array(keys),
                     vectors=np.asarray(vectors, np.float32))


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tf-ccfrec", "embeddings")


GRAPHS = ("fused", "keras")


@dataclasses.dataclass
class TextEncoder:
    """A loaded sentence encoder that embeds batches of strings with dynamic padding.

    Args:
      checkpoint_dir: the encoder checkpoint (`encoder.load_text_embedder`'s).
      batch_tokens: padded tokens per encoder call (texts in a batch x its longest text).
      precision: `encoder.load_text_embedder`'s.
      graph: "fused" (`bert_graph.fused_embedder`: the same function in kernels oneDNN fuses,
        float32 between the products; float32 and bfloat16) or "keras" (the Keras model's own
        call: the reference the fused graph is tested against, and int8's graph).
    """

    checkpoint_dir: str
    batch_tokens: int = 4096
    precision: str = "float32"
    graph: str = "fused"

    def __post_init__(self):
        import tensorflow as tf

        if self.graph not in GRAPHS:
            raise ValueError(f"graph must be one of {GRAPHS}, got {self.graph!r}")
        if self.precision == "int8":
            self.graph = "keras"
        self.model = encoder_lib.load_text_embedder(
            self.checkpoint_dir, "float32" if self.graph == "fused" else self.precision)
        self.tokenizer = self.model.preprocessor.tokenizer
        # Vectors of another precision, or of bfloat16 products in another graph, are other
        # vectors: cached apart. float32 vectors of either graph are the same to rounding.
        self.fingerprint = encoder_fingerprint(self.checkpoint_dir) + (
            "" if self.precision == "float32" else f"-{self.precision}") + (
            "-fused" if self.graph == "fused" and self.precision != "float32" else "")
        self.dim = int(self.model.backbone.hidden_dim)
        if self.graph == "fused":
            from tf_ccfrec.text import bert_graph

            self._embed = bert_graph.fused_embedder(self.model, self.precision)
            return
        model = self.model

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32),
                                      tf.TensorSpec([None, None], tf.bool)],
                     reduce_retracing=True)
        def embed(token_ids, padding_mask):
            return model({"token_ids": token_ids, "padding_mask": padding_mask,
                          "segment_ids": tf.zeros_like(token_ids)}, training=False)

        self._embed = embed

    def token_ids(self, texts: Sequence[str]) -> List[np.ndarray]:
        """[CLS] tokens [SEP] per text, truncated to MAX_TOKENS."""
        ragged = self.tokenizer(list(texts))
        cls, sep = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        return [np.concatenate([[cls], np.asarray(ids)[: MAX_TOKENS - 2], [sep]]).astype(np.int32)
                for ids in (ragged.to_list() if hasattr(ragged, "to_list") else ragged)]

    def embed(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """float32 [len(texts), dim], unit rows, in the order of `texts`."""
        out = np.zeros((len(texts), self.dim), np.float32)
        if not texts:
            return out
        ids = self.token_ids(texts)
        order = np.argsort([len(t) for t in ids], kind="stable")
        batches, start = [], 0
        while start < len(order):
            size = 1
            while (start + size < len(order)
                   and len(ids[order[start + size]]) * (size + 1) <= self.batch_tokens):
                size += 1
            batches.append(order[start:start + size])
            start += size
        bar = _progress(len(texts), "embedding", progress)
        for batch in batches:
            width = max(len(ids[i]) for i in batch)
            token_ids = np.full((len(batch), width), self.tokenizer.pad_token_id, np.int32)
            mask = np.zeros((len(batch), width), bool)
            for row, i in enumerate(batch):
                token_ids[row, : len(ids[i])] = ids[i]
                mask[row, : len(ids[i])] = True
            out[batch] = np.asarray(self._embed(token_ids, mask), np.float32)
            bar.update(len(batch))
        bar.close()
        return out


def _embed_with_beam(texts: Dict[str, str], encoder: TextEncoder, cache: Optional[EmbeddingCache],
                     pipeline, worker_threads: Optional[int]) -> Dict[str, np.ndarray]:
    """{key: vector} of `texts` embedded by the Beam pipeline's workers, through `cache` (or a
    temporary local cache, removed afterwards)."""
    from tf_ccfrec.text import beam_embeddings

    root = None if cache is not None else beam_embeddings.local_cache_root()
    directory = cache.directory if cache is not None else storage.join(root, encoder.fingerprint)
    try:
        handler = beam_embeddings.SentenceEncoderModelHandler(
            encoder.checkpoint_dir, encoder.precision, encoder.batch_tokens,
            threads=worker_threads, graph=encoder.graph)
        beam_embeddings.embed_into_cache(texts, handler, directory, pipeline)
        written = EmbeddingCache(os.path.dirname(directory.rstrip("/")),
                                 os.path.basename(directory.rstrip("/"))).vectors
        missing = [k for k in texts if k not in written]
        if missing:
            raise RuntimeError(f"the Beam pipeline left {len(missing)} of {len(texts)} texts "
                               f"unembedded in {directory}")
        result = {k: written[k] for k in texts}
        if cache is not None:
            cache.vectors.update(result)
        return result
    finally:
        if root is not None:
            storage.rmtree(root)


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="text", disable=not enabled, file=sys.stderr,
                mininterval=1.0)


def embed_views(item_ids: Sequence[str], items: Dict[str, Dict[str, str]], views: Sequence[str],
                encoder: TextEncoder, cache_dir: Optional[str] = None,
                progress: bool = False, beam_pipeline=None,
                worker_threads: Optional[int] = None,
                indexed: bool = False) -> Dict[str, object]:
    """Embeds every view of every item.

    Args:
      item_ids: the item order of the result.
      items: item id -> {view: text}.
      views: the views to embed.
      encoder: the sentence encoder.
      cache_dir: embedding cache root (default ~/.cache/tf-ccfrec/embeddings); "" disables it.
      progress: show a progress bar on stderr (in-process embedding only).
      beam_pipeline: a `beam.Pipeline` (not yet run) to embed the texts the cache lacks with
        RunInference on its workers (`beam_embeddings`); None: in this process. Without a
        cache, the workers write to a local temporary one (local runners only).
      worker_threads: TensorFlow intra-op threads of each Beam worker (None: every core).
      indexed: return the vectors as `IndexedViews` (each distinct text's vector once: a
        million items' four views in 1.7 GB rather than 6 GB) instead of an array.

    Returns:
      {"vectors": float32 [n_items, n_views, dim] (`IndexedViews` with `indexed`),
       "embedded": texts run through the encoder, "cached": distinct texts found in the cache,
       "distinct_texts": distinct texts in all}.
    """
    texts = {text_key(items[i][v]): items[i][v] for i in item_ids for v in views}
    cache = EmbeddingCache(default_cache_dir() if cache_dir is None else cache_dir,
                           encoder.fingerprint) if cache_dir != "" else None
    known = cache.vectors if cache is not None else {}
    missing = [k for k in texts if k not in known]
    by_key = dict(known)
    if beam_pipeline is not None and missing:
        by_key.update(_embed_with_beam({k: texts[k] for k in missing}, encoder, cache,
                                       beam_pipeline, worker_threads))
    else:
        vectors = encoder.embed([texts[k] for k in missing], progress=progress)
        by_key.update(zip(missing, vectors))
        if cache is not None:
            cache.add(missing, vectors)
    keys = list(texts)
    table = np.empty((len(keys), encoder.dim), np.float32)
    for row, key in enumerate(keys):
        table[row] = by_key[key]
    del by_key, known, cache
    rows = {key: row for row, key in enumerate(keys)}
    index = np.array([[rows[text_key(items[item][view])] for view in views]
                      for item in item_ids], np.int32).reshape(len(item_ids), len(views))
    vectors = IndexedViews(table, index)
    return {"vectors": vectors if indexed else vectors[:], "embedded": len(missing),
            "cached": len(texts) - len(missing), "distinct_texts": len(texts)}


class IndexedViews:
    """View vectors float32 [n_items, n_views, dim] held once per distinct text: `table`
    float32 [distinct texts, dim] and `index` int32 [n_items, n_views] (rows of `table`).
    Indexing as the full array (`views[a:b]`, `views[a:b, v]`, `views[i]`) gives the same
    float32 values, built for the rows asked; `shape` and `ndim` are the full array's."""

    ndim = 3
    dtype = np.dtype(np.float32)

    def __init__(self, table: np.ndarray, index: np.ndarray):
        self.table, self.index = table, index
        self.shape = (index.shape[0], index.shape[1], table.shape[1])

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        return self.table[self.index[key]]

    def __array__(self, dtype=None, copy=None):
        full = self.table[self.index]
        return full if dtype is None else full.astype(dtype)
