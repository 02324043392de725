"""The semantic-code artifact: one directory, written whole or not at all.

    <dir>/codes.npz
        item_ids      str [n_items]                 the item order every array follows
        codes         uint8 [n_items, n_codes]      view-major: view v owns codes
                                                    [v * codes_per_view, (v + 1) * codes_per_view)
        view_vectors  float32 [n_items, n_views, pca_dim]   the PCA-whitened view vectors
        codebooks     PQ: float32 [n_codes, codebook_size, pca_dim / codes_per_view]
                      RQ: float32 [n_views, codes_per_view, codebook_size, pca_dim]
        pca_mean, pca_components, pca_scale         per-view PCA, to code new items
    <dir>/codes.json
        version, config, views, encoder, counts and code usage
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict

import numpy as np

from tf_ccfrec import storage
from tf_ccfrec.codes.config import CodesConfig

VERSION = 1
ARRAYS_FILE = "codes.npz"
MANIFEST_FILE = "codes.json"
ARRAYS = ("item_ids", "codes", "view_vectors", "codebooks", "pca_mean", "pca_components",
          "pca_scale")


@dataclasses.dataclass
class CodeArtifact:
    config: CodesConfig
    views: list
    arrays: Dict[str, np.ndarray]
    manifest: Dict[str, Any]

    @property
    def item_ids(self) -> list:
        return self.arrays["item_ids"].tolist()

    @property
    def codes(self) -> np.ndarray:
        return self.arrays["codes"]

    @property
    def view_vectors(self) -> np.ndarray:
        return self.arrays["view_vectors"]


def save(directory: str, artifact: CodeArtifact, overwrite: bool = False) -> None:
    with storage.atomic_directory(directory, overwrite=overwrite) as staging:
        storage.save_npz(os.path.join(staging, ARRAYS_FILE), **artifact.arrays)
        manifest = dict(artifact.manifest, version=VERSION,
                        config=dataclasses.asdict(artifact.config), views=list(artifact.views))
        storage.write_json(os.path.join(staging, MANIFEST_FILE), manifest)


def load(directory: str) -> CodeArtifact:
    """Loads an artifact; refuses other versions with a message saying so."""
    manifest_path = os.path.join(directory, MANIFEST_FILE)
    if not storage.exists(manifest_path):
        raise FileNotFoundError(f"{directory}: no {MANIFEST_FILE}; is it the output of "
                                f"`ccfrec codes build`?")
    storage.check_complete(directory, "the code artifact")
    manifest = storage.read_json(manifest_path)
    if manifest.get("version") != VERSION:
        raise ValueError(f"{manifest_path}: artifact version {manifest.get('version')!r}, this "
                         f"tf-ccfrec reads version {VERSION}; rebuild with `ccfrec codes build`")
    data = storage.load_npz(os.path.join(directory, ARRAYS_FILE))
    arrays = {name: data[name] for name in ARRAYS}
    return CodeArtifact(config=CodesConfig(**manifest["config"]), views=manifest["views"],
                        arrays=arrays, manifest=manifest)


ITEM_ARRAYS = ("item_ids", "codes", "view_vectors")


def reorder(artifact: CodeArtifact, item_ids) -> CodeArtifact:
    """The artifact with its per-item arrays in the order of `item_ids` (a subset of its items;
    e.g. a TFT vocabulary's order).

    Raises:
      ValueError: ids the artifact does not have, named.
    """
    position = {item: i for i, item in enumerate(artifact.item_ids)}
    missing = [item for item in item_ids if item not in position]
    if missing:
        raise ValueError(f"{len(missing)} item ids have no semantic codes (first: "
                         f"{', '.join(map(repr, missing[:5]))}); were the codes built from "
                         f"this dataset's catalog?")
    rows = np.array([position[item] for item in item_ids], np.int64)
    if np.array_equal(rows, np.arange(len(artifact.item_ids))):
        return artifact   # its own order: no copy of the view vectors (2 GB at a million items)
    arrays = dict(artifact.arrays)
    arrays.update({name: artifact.arrays[name][rows] for name in ITEM_ARRAYS})
    return dataclasses.replace(artifact, arrays=arrays)
