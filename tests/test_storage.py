"""Storage through tf.io.gfile: the library's reads and writes round-trip on TensorFlow's
in-memory `ram://` filesystem (a filesystem with no POSIX path, like gs:// or s3://), outputs
are whole or absent with the completion marker, and a static check keeps builtin file IO out of
library and pipeline code."""

import ast
import gzip
import os
import uuid

import numpy as np
import pytest
import tensorflow as tf

from tests import data_files
from tests.conftest import REPO
from tf_ccfrec import storage


@pytest.fixture
def ram():
    root = f"ram://tests-{uuid.uuid4().hex[:8]}"
    yield root
    storage.rmtree(root)


def _upload(local_dir, remote_dir, compress=False):
    """Copies a local dataset directory to `remote_dir` (gzipping every file with compress)."""
    for name in os.listdir(local_dir):
        with open(os.path.join(local_dir, name), "rb") as f:
            data = f.read()
        if compress:
            storage.write_bytes(storage.join(remote_dir, name + ".gz"), gzip.compress(data))
        else:
            storage.write_bytes(storage.join(remote_dir, name), data)
    return remote_dir


def test_files_json_and_arrays_round_trip(ram):
    path = storage.join(ram, "a", "b", "value.json")
    storage.write_json(path, {"x": [1, 2]})
    assert storage.read_json(path) == {"x": [1, 2]}
    arrays = {"ids": np.array(["a", "b"]), "v": np.arange(6, dtype=np.float32).reshape(2, 3)}
    storage.save_npz(storage.join(ram, "arrays.npz"), **arrays)
    loaded = storage.load_npz(storage.join(ram, "arrays.npz"))
    assert loaded["ids"].tolist() == ["a", "b"]
    np.testing.assert_array_equal(loaded["v"], arrays["v"])
    assert storage.listdir(ram) == ["a", "arrays.npz"]
    assert storage.walk_files(ram) == ["a/b/value.json", "arrays.npz"]
    assert storage.glob(storage.join(ram, "nothing-here", "*")) == []


def test_a_local_npz_streams_whole_or_not_at_all(tmp_path):
    """Locally `save_npz` streams into a temporary file renamed into place: it round-trips, and
    an array that fails halfway (after the first member is written) leaves the previous file
    as it was and no temporary file."""
    path = str(tmp_path / "arrays.npz")
    first = {"v": np.arange(12, dtype=np.float32).reshape(3, 4), "ids": np.array(["a", "b"])}
    storage.save_npz(path, **first)
    loaded = storage.load_npz(path)
    np.testing.assert_array_equal(loaded["v"], first["v"])
    assert loaded["ids"].tolist() == ["a", "b"]

    class Failing:
        def __array__(self, dtype=None, copy=None):
            raise ValueError("no array here")

    with pytest.raises(ValueError, match="no array here"):
        storage.save_npz(path, v=np.zeros(5), broken=Failing())
    assert os.listdir(tmp_path) == ["arrays.npz"]
    np.testing.assert_array_equal(storage.load_npz(path)["v"], first["v"])


def test_atomic_directory_on_a_store_without_rename(ram):
    target = storage.join(ram, "out")
    with storage.atomic_directory(target) as staging:
        storage.write_text(storage.join(staging, "x", "part.txt"), "hello")
        assert not storage.is_complete(target)  # nothing readers take while it is written
    assert storage.is_complete(target)
    assert storage.walk_files(target) == [storage.COMPLETE_MARKER, "x/part.txt"]
    assert not [n for n in storage.listdir(ram) if "partial" in n]  # staging removed
    with pytest.raises(storage.OutputExists):
        with storage.atomic_directory(target):
            pass
    # A failing block leaves the previous content as it was and no staging behind.
    with pytest.raises(RuntimeError):
        with storage.atomic_directory(target, overwrite=True) as staging:
            storage.write_text(storage.join(staging, "other.txt"), "new")
            raise RuntimeError("crash")
    assert storage.walk_files(target) == [storage.COMPLETE_MARKER, "x/part.txt"]
    assert storage.listdir(ram) == ["out"]


def test_a_copy_in_progress_or_truncated_is_not_complete(ram, tmp_path):
    for root in (ram, str(tmp_path)):
        target = storage.join(root, "model")
        with storage.atomic_directory(target) as staging:
            storage.write_text(storage.join(staging, "weights.bin"), "0123456789")
        assert storage.is_complete(target)
        storage.write_text(storage.join(target, "weights.bin"), "01234")  # a half-done copy
        assert not storage.is_complete(target)
        storage.rmtree(storage.join(target, "weights.bin"))  # a file not yet copied
        assert not storage.is_complete(target)
        with pytest.raises(storage.IncompleteOutput, match="_COMPLETE.json"):
            storage.check_complete(target, "the model")


@pytest.mark.parametrize("fmt,writer", [
    ("lcrec", lambda d: data_files.lcrec(d, {"0": [0, 1, 2], "1": [1, 2, 0, 1]},
                                          {str(i): {"title": f"t{i}"} for i in range(3)})),
    ("p5", data_files.p5_recbole),
    ("recbole", data_files.recbole),
    ("amazon2023", data_files.amazon2023),
])
def test_readers_read_remote_directories(fmt, writer, tmp_path, ram):
    from tf_ccfrec.data import readers

    local = writer(tmp_path / "local")
    remote = readers.read(fmt, _upload(local, storage.join(ram, "data")))
    here = readers.read(fmt, local)
    assert remote.sequences == here.sequences and remote.items == here.items
    assert remote.source == storage.join(ram, "data")


def test_amazon2023_gzipped_files_as_released(tmp_path, ram):
    """`{Category}.{split}.csv.gz` and `meta_{Category}.jsonl.gz`, locally and remote, read as
    the plain files do; `ccfrec data prepare` gives the same counts."""
    from tf_ccfrec.data import prepare, readers

    plain = data_files.amazon2023(tmp_path / "plain")
    gz_local = tmp_path / "gz"
    gz_local.mkdir()
    for name in os.listdir(plain):
        with open(os.path.join(plain, name), "rb") as f:
            (gz_local / (name + ".gz")).write_bytes(gzip.compress(f.read()))
    gz_remote = _upload(plain, storage.join(ram, "gz"), compress=True)
    expected = readers.read("amazon2023", plain)
    for directory in (str(gz_local), gz_remote):
        data = readers.read("amazon2023", directory)
        assert (data.sequences, data.items, data.splits) == (expected.sequences, expected.items,
                                                             expected.splits)
    counts = [prepare.prepare("amazon2023", d, str(tmp_path / f"prepared-{i}"))
              for i, d in enumerate((plain, str(gz_local)))]
    assert counts[0]["examples"] == counts[1]["examples"]
    assert (counts[0]["users"], counts[0]["items"]) == (counts[1]["users"], counts[1]["items"])
    (gz_local / "Toys.valid.csv").write_text("user_id\n")
    with pytest.raises(Exception, match="both Toys.valid.csv and Toys.valid.csv.gz"):
        readers.read("amazon2023", str(gz_local))


def test_prepare_codes_and_training_inputs_on_remote_storage(tmp_path, ram):
    """Prepared data and the code artifact written to and read from ram://."""
    from tf_ccfrec.codes import artifact as artifact_lib
    from tf_ccfrec.codes.config import CodesConfig
    from tf_ccfrec.data import prepare, tfrecords

    local = data_files.p5_recbole(tmp_path / "raw")
    prepared = storage.join(ram, "prepared")
    stats = prepare.prepare("p5", _upload(local, storage.join(ram, "raw")), prepared)
    assert storage.is_complete(prepared)
    assert prepare.load_statistics(prepared)["examples"] == stats["examples"]
    assert len(tfrecords.read_examples(prepared, "train")) == stats["examples"]["train"]
    item_ids, items = tfrecords.read_catalog(prepared, stats["views"])
    rng = np.random.default_rng(0)
    built = artifact_lib.CodeArtifact(
        config=CodesConfig(pca_dim=4, codes_per_view=2, codebook_size=4), views=["title"],
        arrays={"item_ids": np.array(item_ids), "codes": rng.integers(0, 4, (len(item_ids), 2))
                .astype(np.uint8), "view_vectors": rng.standard_normal((len(item_ids), 1, 4))
                .astype(np.float32), "codebooks": np.zeros((2, 4, 2), np.float32),
                "pca_mean": np.zeros((1, 8), np.float32),
                "pca_components": np.zeros((1, 4, 8), np.float32),
                "pca_scale": np.ones((1, 4), np.float32)},
        manifest={"usage": {}})
    codes_dir = storage.join(ram, "codes")
    artifact_lib.save(codes_dir, built)
    loaded = artifact_lib.load(codes_dir)
    assert loaded.item_ids == item_ids
    np.testing.assert_array_equal(loaded.codes, built.arrays["codes"])
    storage.rmtree(storage.join(codes_dir, storage.COMPLETE_MARKER))
    with pytest.raises(storage.IncompleteOutput, match="code artifact"):
        artifact_lib.load(codes_dir)


def test_embedding_cache_on_remote_storage(ram):
    from tf_ccfrec.text.embeddings import EmbeddingCache

    cache = EmbeddingCache(storage.join(ram, "cache"), "enc")
    cache.add(["k1", "k2"], np.ones((2, 3), np.float32))
    again = EmbeddingCache(storage.join(ram, "cache"), "enc")
    assert sorted(again.vectors) == ["k1", "k2"]


def test_export_and_scann_index_on_remote_storage_and_served_from_there(ram):
    """The SavedModel, its ScaNN index and the registry the server uses, all on ram://."""
    from tests.test_export import ITEM_IDS, _model
    from tf_ccfrec.export import saved_model, scann_index
    from tf_ccfrec.serving import model_config
    from tf_ccfrec.serving.registry import ModelRegistry

    model, popularity = _model()
    base = storage.join(ram, "serving")
    directory = storage.join(base, "ccfrec", "1")
    saved_model.export(model, ITEM_IDS, popularity, directory, top_k=10)
    assert storage.is_complete(directory)
    loaded = saved_model.load(directory)
    history = tf.constant([[ITEM_IDS[2], ITEM_IDS[3]]])
    exact = loaded.signatures["serving_default"](history=history)
    searcher, ids = scann_index.load(storage.join(directory, scann_index.DIRECTORY))
    query = loaded.signatures["embed_query"](history=history)["query"].numpy()
    neighbors, _ = searcher.search_batched(query, final_num_neighbors=10)
    assert [ids[i] for i in neighbors[0]] == [x.decode() for x in exact["item_ids"][0].numpy()]
    # A version still being copied (no marker yet) is not taken, and not marked failed.
    storage.write_text(storage.join(base, "ccfrec", "2", "saved_model.pb"), "half-copied")
    [config] = model_config.single(base, "ccfrec")
    registry = ModelRegistry(config)
    registry.refresh()
    assert registry.available() == [1]
    assert {v: s.state for v, s in registry.statuses()} == {1: "AVAILABLE", 2: "START"}


# Builtin file IO that would turn a gs:// path into a local directory. Library and pipeline code
# goes through tf_ccfrec.storage (tf.io.gfile) instead; these calls are local by nature.
ALLOWED = {
    # np.load on a GFile; np.savez on io.BytesIO (object stores) or on the local temporary file
    # a whole-file write renames into place, opened with `open`: zipfile reads back what it
    # wrote, which GFile's write mode refuses.
    ("tf_ccfrec/storage.py", "np.savez"), ("tf_ccfrec/storage.py", "np.load"),
    ("tf_ccfrec/storage.py", "open"),
    # ScaNN's C++ reads and writes POSIX files: a local scratch directory, copied by gfile.
    ("tf_ccfrec/export/scann_index.py", "tempfile.TemporaryDirectory"),
    # A non-chief worker's scratch run directory, deleted when training ends.
    ("tf_ccfrec/distribute.py", "tempfile.TemporaryDirectory"),
    # Beam workers' embedding cache when the caller keeps none (local runners only), removed
    # by storage.rmtree afterwards.
    ("tf_ccfrec/text/beam_embeddings.py", "tempfile.mkdtemp"),
    # The installed package's own source files (the code fingerprint).
    ("tfx_pipeline/fingerprint.py", "open"), ("tfx_pipeline/fingerprint.py", "os.path.isfile"),
    # LocalDagRunner's ML Metadata is a local SQLite file.
    ("tfx_pipeline/local_runner.py", "os.makedirs"),
    ("tfx_pipeline/local_runner.py", "os.path.exists"),
    # The Kubeflow compiler writes to a local directory; the result is copied by gfile.
    ("tfx_pipeline/kubeflow_v2_runner.py", "tempfile.TemporaryDirectory"),
}
_OS = {"makedirs", "mkdir", "rename", "replace", "listdir", "walk", "remove", "unlink", "rmdir",
       "scandir", "stat"}
_OS_PATH = {"exists", "isdir", "isfile", "getsize", "getmtime"}
_NUMPY = {"load", "save", "savez", "savez_compressed", "loadtxt", "savetxt"}


def builtin_file_io(source: str):
    """(line, call) of every builtin file IO call in Python source."""
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id == "open":
            yield node.lineno, "open"
        elif isinstance(f, ast.Attribute):
            owner = f.value
            if isinstance(owner, ast.Name):
                if (owner.id == "os" and f.attr in _OS) or owner.id in ("shutil", "glob",
                                                                       "tempfile") or (
                        owner.id in ("np", "numpy") and f.attr in _NUMPY):
                    yield node.lineno, f"{owner.id}.{f.attr}"
            elif (isinstance(owner, ast.Attribute) and isinstance(owner.value, ast.Name)
                  and owner.value.id == "os" and owner.attr == "path" and f.attr in _OS_PATH):
                yield node.lineno, f"os.path.{f.attr}"


def test_the_static_check_finds_builtin_io():
    found = [call for _, call in builtin_file_io(
        "import os, glob\nopen('x')\nos.path.exists('y')\nglob.glob('*')\nnp.load('z')\n"
        "os.path.join('a', 'b')\n")]
    assert found == ["open", "os.path.exists", "glob.glob", "np.load"]


def test_no_builtin_file_io_in_library_and_pipeline_code():
    offenders = []
    for package in ("tf_ccfrec", "tfx_pipeline"):
        for directory, _, names in os.walk(os.path.join(REPO, package)):
            for name in sorted(names):
                if not name.endswith(".py"):
                    continue
                path = os.path.join(directory, name)
                relative = os.path.relpath(path, REPO)
                with open(path) as f:
                    for line, call in builtin_file_io(f.read()):
                        if (relative, call) not in ALLOWED and (relative, "*") not in ALLOWED:
                            offenders.append(f"{relative}:{line}: {call}")
    assert not offenders, "use tf_ccfrec.storage (tf.io.gfile):\n" + "\n".join(offenders)
