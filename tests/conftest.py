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
