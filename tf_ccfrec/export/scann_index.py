"""A ScaNN index over the exported item vectors, kept inside the SavedModel directory
(`assets.extra/scann/`): the pybind searcher's files, the item ids in the order the index
refers to, and a manifest with a SHA-256 of every file, checked on load.

scann's TensorFlow ops do not load under TF 2.21 and stock TF Serving cannot load them at all,
so the index is not part of the graph; `ccfrec serve` loads it with the pybind API.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from typing import List, Tuple

import numpy as np

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
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_searcher(vectors: np.ndarray, k: int = 10):
    """A dot-product ScaNN searcher over unit vectors float [n, dim]: brute force below 20,000
    items, else a partitioning tree (about sqrt(n) leaves, 10% searched), asymmetric hashing and
    exact re-ordering of the best 200."""
    import scann

    n = len(vectors)
    builder = scann.scann_ops_pybind.builder(vectors, k, "dot_product")
    if n < 20_000:
        return builder.score_brute_force().build()
    leaves = int(math.sqrt(n))
    return (builder.tree(num_leaves=leaves, num_leaves_to_search=max(1, leaves // 10),
                         training_sample_size=min(n, 250_000))
            .score_ah(2, anisotropic_quantization_threshold=0.2)
            .reorder(200).build())


def write(directory: str, vectors: np.ndarray, item_ids: List[str]) -> None:
    """Builds the index of `vectors` (row i = item_ids[i]) and writes it under `directory`."""
    if len(vectors) != len(item_ids):
        raise ValueError(f"{len(vectors)} vectors for {len(item_ids)} item ids")
    os.makedirs(directory, exist_ok=True)
    build_searcher(np.asarray(vectors, np.float32)).serialize(directory)
    assets = os.path.join(directory, ASSETS)
    with open(assets) as f:
        text = f.read()
    with open(assets, "w") as f:
        f.write(_with_asset_dir(text, ""))
    with open(os.path.join(directory, ITEM_IDS), "w") as f:
        f.write("".join(f"{item}\n" for item in item_ids))
    files = sorted(name for name in os.listdir(directory) if name != MANIFEST)
    manifest = {"version": VERSION, "items": len(item_ids), "dim": int(vectors.shape[1]),
                "distance": "dot_product",
                "sha256": {name: _sha256(os.path.join(directory, name)) for name in files}}
    with open(os.path.join(directory, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=1)


def load(directory: str) -> Tuple[object, List[str]]:
    """(searcher, item ids) of an index written by `write`, after checking every file.

    Raises:
      ScannIndexError: a missing file, a checksum that does not match, or another version.
    """
    from scann.scann_ops.py import scann_ops_pybind

    directory = os.path.abspath(directory)
    path = os.path.join(directory, MANIFEST)
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as error:
        raise ScannIndexError(f"{path}: cannot read the index manifest ({error})") from None
    if manifest.get("version") != VERSION:
        raise ScannIndexError(f"{path}: index version {manifest.get('version')}, expected {VERSION}")
    for name, expected in manifest["sha256"].items():
        file = os.path.join(directory, name)
        if not os.path.exists(file) or _sha256(file) != expected:
            raise ScannIndexError(f"{file}: missing or its checksum does not match the manifest")
    with open(os.path.join(directory, ITEM_IDS)) as f:
        item_ids = f.read().splitlines()
    with open(os.path.join(directory, ASSETS)) as f:
        assets = _with_asset_dir(f.read(), directory)
    searcher = scann_ops_pybind.ScannSearcher(
        scann_ops_pybind.scann_pybind.ScannNumpy(directory, assets), None)
    return searcher, item_ids
