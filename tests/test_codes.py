"""PCA whitening, PQ and RQ codes: shapes, ranges, determinism, usage, the artifact."""

import json
import os
import subprocess

import numpy as np
import pytest

from tests.conftest import REPO
from tf_ccfrec.codes import artifact, build
from tf_ccfrec.codes.config import CodesConfig
from tf_ccfrec.codes.pca import whiten_views
from tf_ccfrec.codes.usage import code_usage


def _embeddings(n=600, views=3, dim=48, seed=0):
    """Clustered unit vectors, like sentence embeddings of related items."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((20, views, dim))
    x = centers[rng.integers(0, 20, n)] + 0.3 * rng.standard_normal((n, views, dim))
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_pca_whitens_each_view():
    x = _embeddings()
    pca = whiten_views(x, 16, seed=0)
    assert pca["vectors"].shape == (600, 3, 16)
    for v in range(3):
        np.testing.assert_allclose(pca["vectors"][:, v].std(axis=0, ddof=1), 1.0, atol=1e-3)
        np.testing.assert_allclose(pca["vectors"][:, v].mean(axis=0), 0.0, atol=1e-4)
        projected = (x[:, v] - pca["mean"][v]) @ pca["components"][v].T / pca["scale"][v]
        np.testing.assert_allclose(projected, pca["vectors"][:, v], atol=1e-3)
    with pytest.raises(ValueError, match="needs at least 64 items"):
        whiten_views(x[:10], 64, seed=0)


@pytest.mark.parametrize("chunk", [64, 65536])
def test_pca_equals_scikit_learn(monkeypatch, chunk):
    """The blockwise covariance PCA fits what scikit-learn's PCA fits, signs included, whether
    the items come in one block or ten."""
    from sklearn.decomposition import PCA

    from tf_ccfrec.codes import pca as pca_lib

    monkeypatch.setattr(pca_lib, "CHUNK", chunk)
    x = _embeddings()
    ours = whiten_views(x, 16, seed=0)
    for v in range(3):
        reference = PCA(n_components=16, whiten=True, svd_solver="full")
        vectors = reference.fit_transform(x[:, v].astype(np.float64))
        np.testing.assert_allclose(ours["components"][v], reference.components_, atol=1e-5)
        np.testing.assert_allclose(ours["scale"][v], np.sqrt(reference.explained_variance_),
                                   rtol=1e-5)
        np.testing.assert_allclose(ours["mean"][v], reference.mean_, atol=1e-6)
        np.testing.assert_allclose(ours["vectors"][:, v], vectors, atol=1e-4)


@pytest.mark.parametrize("method,codebook_shape", [("pq", (12, 32, 4)), ("rq", (3, 4, 32, 16))])
def test_codes_shapes_ranges_and_determinism(method, codebook_shape):
    config = CodesConfig(method=method, pca_dim=16, codes_per_view=4, codebook_size=32, seed=3)
    ids = [f"i{k}" for k in range(600)]
    x = _embeddings()
    first = build.codes_from_embeddings(ids, x, ["title", "brand", "categories"], config)
    again = build.codes_from_embeddings(ids, x, ["title", "brand", "categories"], config)
    assert first.codes.shape == (600, 12)
    assert first.codes.dtype == np.uint8
    assert first.codes.max() < 32
    assert first.arrays["codebooks"].shape == codebook_shape
    assert first.view_vectors.shape == (600, 3, 16)
    np.testing.assert_array_equal(first.codes, again.codes)
    np.testing.assert_array_equal(first.arrays["codebooks"], again.arrays["codebooks"])
    # Every code uses most of its codebook on clustered data.
    usage = first.manifest["usage"]
    assert len(usage["entropy_bits"]) == 12
    assert min(usage["entropy_bits"]) > 2.0
    other_seed = build.codes_from_embeddings(
        ids, x, ["a", "b", "c"], CodesConfig(method=method, pca_dim=16, codebook_size=32, seed=4))
    assert not np.array_equal(other_seed.codes, first.codes)


def test_pq_codes_reconstruct_the_vectors():
    config = CodesConfig(pca_dim=16, codes_per_view=4, codebook_size=32)
    result = build.codes_from_embeddings([str(k) for k in range(600)], _embeddings(),
                                         ["a", "b", "c"], config)
    books = result.arrays["codebooks"]  # [12, 32, 4]
    recon = np.concatenate([books[j, result.codes[:, j]] for j in range(12)], axis=1)
    target = result.view_vectors.reshape(600, 48)
    error = np.linalg.norm(recon - target, axis=1) / np.linalg.norm(target, axis=1)
    assert np.median(error) < 0.7  # far better than a random codeword (about 1.4)


def test_code_usage():
    codes = np.array([[0, 1], [0, 1], [1, 0], [2, 0]], np.uint8)
    usage = code_usage(codes, 4)
    assert usage["entropy_bits"] == [1.5, 1.0]
    assert usage["unused_centroids"] == [1, 2]
    assert usage["collision_rate"] == 0.5
    assert usage["unique_code_tuples"] == 3


def test_config_validation():
    with pytest.raises(ValueError, match="power of two"):
        CodesConfig(codebook_size=100)
    with pytest.raises(ValueError, match="not divisible"):
        CodesConfig(pca_dim=10, codes_per_view=4)
    with pytest.raises(ValueError, match="method"):
        CodesConfig(method="lsh")


def test_artifact_round_trip_and_version(tmp_path):
    config = CodesConfig(pca_dim=16, codebook_size=32)
    made = build.codes_from_embeddings([f"i{k}" for k in range(600)], _embeddings(),
                                       ["t", "b", "c"], config)
    artifact.save(str(tmp_path / "codes"), made)
    loaded = artifact.load(str(tmp_path / "codes"))
    assert loaded.config == config
    assert loaded.item_ids == made.item_ids
    np.testing.assert_array_equal(loaded.codes, made.codes)
    manifest_path = tmp_path / "codes" / artifact.MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    assert manifest["version"] == artifact.VERSION
    manifest["version"] = 99
    manifest_path.write_text(json.dumps(manifest))
    from tf_ccfrec import storage

    # An edited file no longer matches the completion marker; one written whole by another
    # version (marker and all) is refused for its version.
    with pytest.raises(storage.IncompleteOutput, match="code artifact"):
        artifact.load(str(tmp_path / "codes"))
    storage.mark_complete(str(tmp_path / "codes"))
    with pytest.raises(ValueError, match="artifact version 99"):
        artifact.load(str(tmp_path / "codes"))


def test_cli_codes_build_on_prepared_data(tmp_path, office_dir):
    """The real path: prepare a slice of Office, build codes with the real encoder."""
    from tests import data_files
    from tf_ccfrec.data import prepare, readers

    office = readers.read("lcrec", office_dir)
    keep = list(office.items)[:300]
    small = data_files.lcrec(
        tmp_path / "raw", {"0": [int(i) for i in keep]},
        {i: {v: office.items[i][v] for v in office.views} for i in keep})
    prepare.prepare("lcrec", small, str(tmp_path / "prepared"))
    ccfrec = os.path.join(REPO, "bin", "ccfrec")
    command = [ccfrec, "codes", "build", "--input", str(tmp_path / "prepared"), "--output",
               str(tmp_path / "codes"), "--pca-dim", "32", "--codebook-size", "64",
               "--embedding-cache", str(tmp_path / "cache"), "--no-progress"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "16 codes per item (PQ, 64 centroids)" in result.stdout
    loaded = artifact.load(str(tmp_path / "codes"))
    assert loaded.item_ids == keep
    assert loaded.views == ["title", "brand", "categories", "description"]
    assert loaded.codes.shape == (300, 16)
    rerun = subprocess.run(command + ["--overwrite"], capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert ", 0 embedded," in rerun.stdout  # every text came from the cache
    np.testing.assert_array_equal(artifact.load(str(tmp_path / "codes")).codes, loaded.codes)
    refused = subprocess.run(command, capture_output=True, text=True)
    assert refused.returncode == 2 and "pass --overwrite" in refused.stderr


@pytest.mark.parametrize("method", ["pq", "rq"])
def test_new_items_get_codes_from_the_frozen_pca_and_codebooks(method):
    """Encoding the catalog's own embeddings again gives its codes and view vectors; a new
    item's PQ codes are the nearest codeword of each sub-vector (NumPy oracle)."""
    from tf_ccfrec.codes import encode

    config = CodesConfig(method=method, pca_dim=16, codes_per_view=4, codebook_size=32, seed=3)
    x = _embeddings()
    built = build.codes_from_embeddings([f"i{k}" for k in range(600)], x, ["a", "b", "c"],
                                        config)
    again = encode.encode_embeddings(built, x)
    np.testing.assert_allclose(again["view_vectors"], built.view_vectors, atol=1e-4)
    np.testing.assert_array_equal(again["codes"], built.codes)
    new = _embeddings(n=50, seed=9)
    coded = encode.encode_embeddings(built, new)
    assert coded["codes"].shape == (50, 12) and coded["codes"].dtype == np.uint8
    if method == "pq":
        codebooks = built.arrays["codebooks"]
        sub = coded["view_vectors"].reshape(50, 12, -1)
        distances = ((sub[:, :, None, :] - codebooks[None]) ** 2).sum(-1)
        np.testing.assert_array_equal(coded["codes"], distances.argmin(-1))
    with pytest.raises(ValueError, match=r"the artifact's PCA takes \[n, 3, 48\]"):
        encode.encode_embeddings(built, new[:, :2])


def test_new_item_texts_are_coded_with_the_artifacts_encoder(tmp_path):
    """Texts through MiniLM, the frozen PCA and PQ: a new item with an existing item's texts
    gets exactly its codes and view vectors (given the catalog's texts); another encoder is
    refused."""
    from tf_ccfrec.codes import encode

    colours = ["red", "blue", "green", "black", "white", "pink", "gold", "grey"]
    things = ["lipstick", "shampoo", "nail polish", "face cream", "perfume", "eye liner",
              "hair dryer", "sunscreen", "soap"]
    items = {f"i{k}": {"title": f"{colours[k % 8]} {things[k % 9]} number {k}",
                       "brand": f"brand {k % 12}"} for k in range(72)}
    ids = sorted(items)
    config = CodesConfig(pca_dim=8, codes_per_view=2, codebook_size=16, seed=0)
    built = build.codes_from_texts(ids, items, ["title", "brand"], config,
                                   cache_dir=str(tmp_path / "cache"))
    new = {"copy": dict(items["i7"]), "fresh": {"title": "violet hand lotion", "brand": "x"}}
    coded = encode.encode_texts(built, ["copy", "fresh"], new, items,
                                cache_dir=str(tmp_path / "cache"))
    np.testing.assert_array_equal(coded["codes"][0], built.codes[ids.index("i7")])
    np.testing.assert_array_equal(coded["view_vectors"][0], built.view_vectors[ids.index("i7")])
    # Without the catalog's texts the copy is projected again: the same up to rounding.
    alone = encode.encode_texts(built, ["copy"], new, cache_dir=str(tmp_path / "cache"))
    np.testing.assert_allclose(alone["view_vectors"][0], built.view_vectors[ids.index("i7")],
                               atol=1e-3)
    assert coded["cached"] == 2 and coded["embedded"] == 2
    with pytest.raises(ValueError, match=r"item 'bad': no text for the views \['brand'\]"):
        encode.encode_texts(built, ["bad"], {"bad": {"title": "t"}}, cache_dir="")
    built.manifest["encoder"]["fingerprint"] = "another"
    with pytest.raises(ValueError, match="not the one the codes were built with"):
        encode.encode_texts(built, ["fresh"], new, cache_dir="")


def test_new_item_texts_are_coded_at_the_artifacts_encoder_precision(tmp_path):
    """Codes built with the bfloat16 encoder code new texts with it too (its fingerprint is the
    artifact's), and through Beam workers as in this process."""
    from tf_ccfrec.codes import encode
    from tf_ccfrec.text import beam_embeddings

    items = {f"i{k}": {"title": f"shade {k % 7} lipstick {k}", "brand": f"brand {k % 16}"}
             for k in range(48)}
    ids = sorted(items)
    config = CodesConfig(pca_dim=8, codes_per_view=2, codebook_size=8, seed=0)
    built = build.codes_from_texts(ids, items, ["title", "brand"], config, cache_dir="",
                                   precision="bfloat16")
    assert built.manifest["encoder"]["fingerprint"].endswith("-bfloat16-fused")
    assert built.manifest["encoder"]["graph"] == "fused"
    new = {"copy": dict(items["i3"]), "fresh": {"title": "violet hand lotion", "brand": "x"}}
    coded = encode.encode_texts(built, ["copy", "fresh"], new, items, cache_dir="")
    np.testing.assert_array_equal(coded["codes"][0], built.codes[ids.index("i3")])
    recoded = encode.recode(built, ["copy", "fresh"], new, items,
                            cache_dir=str(tmp_path / "cache"),
                            beam_pipeline=beam_embeddings.make_pipeline(
                                beam_embeddings.direct_pipeline_args(1)))
    assert recoded.manifest["encoded_with_existing_codebooks"]["embedded"] == 4
    np.testing.assert_array_equal(recoded.codes[0], coded["codes"][0])
    np.testing.assert_allclose(recoded.view_vectors, coded["view_vectors"], atol=0.05)
    # An artifact from before the fused graph records no graph: its texts were embedded by the
    # Keras model's, and new ones are too (its fingerprint, and its vectors for the same text).
    legacy = build.codes_from_texts(ids, items, ["title", "brand"], config, cache_dir="",
                                    precision="bfloat16", encoder_graph="keras")
    del legacy.manifest["encoder"]["graph"]
    again = encode.encode_texts(legacy, ["copy"], new, cache_dir="")
    np.testing.assert_allclose(again["view_vectors"][0], legacy.view_vectors[ids.index("i3")],
                               atol=1e-3)
