"""Shared fixtures. tf_ccfrec.compat comes first, as in every entry point."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tf_ccfrec.compat  # noqa: E402,F401  (must precede TensorFlow)

import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OFFICE = os.path.join(REPO, "data", "office")


@pytest.fixture
def repo():
    return REPO


@pytest.fixture
def office_dir():
    return OFFICE


@pytest.fixture(scope="session")
def embedding_cache(tmp_path_factory):
    """One embedding cache for the pipeline runs of the session (its files are keyed by text,
    encoder, graph and precision, so runs share what they have in common, as in production):
    the first run to meet a text encodes it, the others read its vector."""
    return str(tmp_path_factory.mktemp("embedding_cache"))
