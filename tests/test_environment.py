"""The pinned stack is what is installed, and Keras 2 and Keras 3 live side by side."""

import importlib.metadata
import os
import re

from tests.conftest import REPO


def _pins(name):
    pins = {}
    with open(os.path.join(REPO, "requirements", name)) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                package, version = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line).groups()
                pins[package] = version
    return pins


def test_installed_versions_equal_the_pins():
    pins = {**_pins("base.txt"), **_pins("test.txt"), **_pins("nodeps.txt")}
    installed = {name: importlib.metadata.version(name) for name in pins}
    assert installed == pins


def test_tf_keras_is_keras_2():
    import tensorflow as tf

    assert tf.__version__ == "2.21.0"
    assert tf.keras.__name__.startswith("tf_keras")
    layer = tf.keras.layers.Dense(3)
    assert layer(tf.ones([2, 4])).shape == (2, 3)
    import tf_keras

    assert tf_keras.__version__.startswith("2.")


def test_keras_3_importable_beside_tf_keras():
    import keras
    import numpy as np
    import tensorflow as tf

    assert keras.__version__.startswith("3.")
    assert keras.config.backend() == "tensorflow"
    dense = keras.layers.Dense(2)
    out = dense(np.ones((1, 4), np.float32))
    assert tuple(out.shape) == (1, 2)
    assert not isinstance(dense, tf.keras.layers.Layer)


def test_tfx_components_import():
    from tfx import v1 as tfx
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

    assert tfx.components.Trainer is not None
    assert kubeflow_v2_dag_runner.KubeflowV2DagRunner is not None
    import ml_metadata  # noqa: F401  (manylinux_2_39 wheel: needs glibc >= 2.38)
    import tensorflow_data_validation  # noqa: F401
    import tensorflow_model_analysis  # noqa: F401
    import tensorflow_text  # noqa: F401
    import tensorflow_transform  # noqa: F401


def test_tensorflow_text_ops_load():
    # tensorflow-text 2.21.0's wheel misses an ICU data symbol (icudt77_dat); 2.21.1 is pinned.
    import tensorflow_text as tf_text

    normalized = tf_text.normalize_utf8(["Cafe\u0301 \uff21"], "NFKC").numpy()[0].decode()
    assert normalized == "Caf\u00e9 A"
    tokens = tf_text.WhitespaceTokenizer().tokenize(["a  b c"]).to_list()
    assert tokens == [[b"a", b"b", b"c"]]
