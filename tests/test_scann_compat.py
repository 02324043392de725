"""tf_ccfrec.compat: TFRS imports and ScaNN's pybind searcher works under TF 2.21."""

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO


def _unit(rng, n, dim):
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_tfrs_imports_and_marks_scann_tf_ops_absent():
    import tensorflow_recommenders as tfrs

    from tf_ccfrec import compat

    assert tfrs.__version__ == "v0.7.7"
    # scann 1.4.2's ops are built for TF 2.20; the hook records the load failure.
    assert compat.scann_tf_ops_loaded is False
    assert "undefined symbol" in compat.scann_tf_ops_error
    with pytest.raises(ImportError, match="scann"):
        tfrs.layers.factorized_top_k.ScaNN(k=10)
    # TFRS's exact top-k works.
    import tensorflow as tf

    top_k = tfrs.layers.factorized_top_k.BruteForce(k=3)
    top_k.index(tf.eye(5), tf.constant([b"a", b"b", b"c", b"d", b"e"]))
    scores, ids = top_k(tf.constant([[0.0, 0.0, 1.0, 0.0, 0.0]]))
    assert ids.numpy()[0, 0] == b"c"


def test_scann_pybind_recall_against_exact_search(tmp_path):
    import scann

    rng = np.random.default_rng(0)
    database, queries = _unit(rng, 20_000, 32), _unit(rng, 500, 32)
    exact = np.argsort(-queries @ database.T, axis=1)[:, :10]
    searcher = (scann.scann_ops_pybind.builder(database, 10, "dot_product")
                .tree(num_leaves=100, num_leaves_to_search=50, training_sample_size=20_000)
                .score_ah(2, anisotropic_quantization_threshold=0.2)
                .reorder(300)
                .build())
    neighbors, _ = searcher.search_batched(queries)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(neighbors, exact)])
    assert recall >= 0.95, recall

    searcher.serialize(str(tmp_path))
    loaded = scann.scann_ops_pybind.load_searcher(str(tmp_path))
    reloaded, _ = loaded.search_batched(queries)
    np.testing.assert_array_equal(reloaded, neighbors)


def _python(code, legacy_keras=True):
    full_env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    full_env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    full_env["CCFREC_NO_STARTUP_HOOK"] = "1"  # only what `code` imports
    if legacy_keras:
        full_env["TF_USE_LEGACY_KERAS"] = "1"
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=full_env,
                          capture_output=True, text=True)


@pytest.mark.slow
def test_without_compat_tfrs_import_fails_with_the_upstream_error():
    # The cause compat works around; if this starts passing, the hook can go.
    result = _python("import tensorflow_recommenders")
    assert result.returncode != 0
    assert "_scann_ops.so: undefined symbol" in result.stderr


@pytest.mark.slow
def test_compat_refuses_tensorflow_imported_first_with_keras_3():
    result = _python("import tensorflow; import tf_ccfrec.compat", legacy_keras=False)
    assert result.returncode != 0
    assert "Import tf_ccfrec.compat first" in result.stderr
    result = _python("import tf_ccfrec.compat, tensorflow as tf; print(tf.keras.__name__)",
                     legacy_keras=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("tf_keras")
