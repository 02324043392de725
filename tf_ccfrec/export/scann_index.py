"""A ScaNN index over the exported item vectors, kept inside the SavedModel directory
(`assets.extra/scann/`): the pybind searcher's files, the item ids in the order the index
refers to, and a manifest with a SHA-256 of every file, checked on load.

scann's TensorFlow ops do not load under TF 2.21 and stock TF Serving cannot load them at all,
so the index is not part of the graph; `ccfrec serve` loads it with the pybind API.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import tempfile
from typing import List, Tuple

import numpy as np

from tf_ccfrec import storage

DIRECTORY = os.path.join("assets.extra", "scann")
MANIFEST = "manifest.json"
ITEM_IDS = "item_ids.txt"
VERSION = 1
ASSETS = "scann_assets.pbtxt"
# scann writes absolute asset paths; the index is stored with bare file names instead, so that
# the SavedModel directory can be staged, renamed and copied, and they are resolved on load.
_ASSET_PATH = re.compile(r'asset_path: "([^"]*)"')


def _with_asset_dir(text: str, directory: str) -> str:
    return _ASSET_PATH.sub(lambda m: 'asset_path: "%s"' % os.path.join(
        directory, os.path.basename(m.group(1))), text)


class ScannIndexError(ValueError):
    """A missing, corrupt or mismatched index; the message names the file."""


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with storage.open_binary(path) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _local_directory() -> tempfile.TemporaryDirectory:
    """A local scratch directory for the block: ScaNN's C++ reads and writes its files with
    POSIX IO, so an index on remote storage passes through one."""
    return tempfile.TemporaryDirectory(prefix="ccfrec-scann-")  # local-only: ScaNN's files


def build_searcher(vectors: np.ndarray, k: int = 10):
    """A dot-product ScaNN searcher over unit vectors float [n, dim]: brute force below 20,000
    items, else a partitioning tree (about sqrt(n) leaves, 15% searched), asymmetric hashing and
    exact re-ordering of the best 300 (recall@10 0.96 against exact search on a model's own
    vectors at a million items; docs/scale.md)."""
    import scann

    n = len(vectors)
    builder = scann.scann_ops_pybind.builder(vectors, k, "dot_product")
    if n < 20_000:
        return builder.score_brute_force().build()
    leaves = int(math.sqrt(n))
    return (builder.tree(num_leaves=leaves, num_leaves_to_search=max(1, leaves * 15 // 100),
                         training_sample_size=min(n, 250_000))
            .score_ah(2, anisotropic_quantization_threshold=0.2)
            .reorder(300).build())


def write(directory: str, vectors: np.ndarray, item_ids: List[str]) -> None:
    """Builds the index of `vectors` (row i = item_ids[i]) and writes it under `directory`."""
    if len(vectors) != len(item_ids):
        raise ValueError(f"{len(vectors)} vectors for {len(item_ids)} item ids")
    with _local_directory() as local:
        build_searcher(np.asarray(vectors, np.float32)).serialize(local)
        assets = os.path.join(local, ASSETS)
        storage.write_text(assets, _with_asset_dir(storage.read_bytes(assets).decode(), ""))
        storage.write_text(os.path.join(local, ITEM_IDS), "".join(f"{item}\n"
                                                                 for item in item_ids))
        files = [name for name in storage.walk_files(local) if name != MANIFEST]
        manifest = {"version": VERSION, "items": len(item_ids), "dim": int(vectors.shape[1]),
                    "distance": "dot_product",
                    "sha256": {name: _sha256(os.path.join(local, name)) for name in files}}
        storage.write_json(os.path.join(local, MANIFEST), manifest)
        storage.copy_tree(local, directory)


def load(directory: str) -> Tuple[object, List[str]]:
    """(searcher, item ids) of an index written by `write`, after checking every file.

    Raises:
      ScannIndexError: a missing file, a checksum that does not match, or another version.
    """
    directory = storage.absolute(directory)
    if not storage.is_local(directory):
        with _local_directory() as local:
            storage.copy_tree(directory, local)
            searcher, item_ids = _load_local(local, shown_as=directory)
        return searcher, item_ids
    return _load_local(directory, shown_as=directory)


def _load_local(directory: str, shown_as: str) -> Tuple[object, List[str]]:
    from scann.scann_ops.py import scann_ops_pybind

    path = os.path.join(directory, MANIFEST)
    shown = os.path.join(shown_as, MANIFEST)
    try:
        manifest = storage.read_json(path)
    except Exception as error:  # noqa: BLE001  (OSError, JSON, tf.errors.NotFoundError)
        raise ScannIndexError(f"{shown}: cannot read the index manifest ({error})") from None
    if manifest.get("version") != VERSION:
        raise ScannIndexError(f"{shown}: index version {manifest.get('version')}, "
                              f"expected {VERSION}")
    for name, expected in manifest["sha256"].items():
        file = os.path.join(directory, name)
        if not storage.exists(file) or _sha256(file) != expected:
            raise ScannIndexError(f"{os.path.join(shown_as, name)}: missing or its checksum "
                                  f"does not match the manifest")
    item_ids = storage.read_bytes(os.path.join(directory, ITEM_IDS)).decode().splitlines()
    assets = _with_asset_dir(storage.read_bytes(os.path.join(directory, ASSETS)).decode(),
                             directory)
    searcher = scann_ops_pybind.ScannSearcher(
        scann_ops_pybind.scann_pybind.ScannNumpy(directory, assets), None)
    return searcher, item_ids
