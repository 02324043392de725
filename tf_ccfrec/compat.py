"""Makes the pinned stack importable together. Every entry point imports this module first.

Two upstream facts it works around:

1. TensorFlow Recommenders 0.7.7 is written for Keras 2. TF 2.21 resolves `tf.keras` to Keras 3
   unless `TF_USE_LEGACY_KERAS=1` is set before TensorFlow is imported, in which case `tf.keras` is
   the `tf_keras` package. This module sets it (and refuses to go on if TensorFlow was already
   imported with Keras 3, since the choice cannot be undone in a running process).

2. scann 1.4.2's TensorFlow custom ops (`scann/scann_ops/cc/_scann_ops.so`) are built against
   TF 2.20's Abseil ABI. Under TF 2.21, `tf.load_op_library` raises `tf.errors.NotFoundError`
   ("undefined symbol: ...absl...lts_20250127...") from `scann/__init__.py`. That package only
   guards the import with `except ModuleNotFoundError`, so `import scann` fails, and with it
   `import tensorflow_recommenders` (whose `layers/factorized_top_k.py` imports scann and only
   catches `ImportError`). ScaNN's pybind searcher (`scann.scann_ops_pybind`), which does not
   use TensorFlow, is unaffected.

   This module installs an import hook that turns the op library's load failure into the
   `ModuleNotFoundError` scann's own `__init__` already handles, so `import scann` gives the
   pybind API, and marks ScaNN as absent in TFRS (`factorized_top_k._HAVE_SCANN = False`) so
   `tfrs.layers.factorized_top_k.ScaNN` raises TFRS's own clear ImportError instead of an
   AttributeError deep inside. When a scann release whose ops load under this TensorFlow is
   installed, the hook changes nothing. tf-ccfrec builds its ScaNN indexes with the pybind API.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys

# Must precede the first TensorFlow import in the process.
_KERAS_CHOICE_FIXED = "tensorflow" in sys.modules and os.environ.get("TF_USE_LEGACY_KERAS") != "1"
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

SCANN_TF_OPS_MODULE = "scann.scann_ops.py.scann_ops"
SCANN_OP_LIBRARY = "scann.scann_ops.cc._scann_ops"
TFRS_TOP_K_MODULE = "tensorflow_recommenders.layers.factorized_top_k"

# Set once scann's TF op module was tried: True if it loaded, False if it failed to.
scann_tf_ops_loaded: bool | None = None
scann_tf_ops_error: str | None = None


class _OpLibraryLoader(importlib.abc.Loader):
    """Runs scann's TF op module; a failure to load its .so becomes ModuleNotFoundError."""

    def __init__(self, wrapped: importlib.abc.Loader):
        self._wrapped = wrapped

    def create_module(self, spec):
        return self._wrapped.create_module(spec)

    def exec_module(self, module):
        global scann_tf_ops_loaded, scann_tf_ops_error
        try:
            self._wrapped.exec_module(module)
        except Exception as error:  # tf.errors.NotFoundError: undefined symbol in the .so
            if type(error).__name__ != "NotFoundError":
                raise
            scann_tf_ops_loaded = False
            scann_tf_ops_error = str(error).splitlines()[0]
            raise ModuleNotFoundError(
                f"scann's TensorFlow ops do not load under this TensorFlow "
                f"({scann_tf_ops_error}); use scann.scann_ops_pybind",
                # Not this module's own name: `from scann.scann_ops.py import scann_ops` would
                # then turn the error into a plain ImportError that scann does not catch.
                name=SCANN_OP_LIBRARY,
            ) from error
        scann_tf_ops_loaded = True


class _TopKLoader(importlib.abc.Loader):
    """Runs TFRS's factorized_top_k, then marks ScaNN absent if scann's TF ops did not load."""

    def __init__(self, wrapped: importlib.abc.Loader):
        self._wrapped = wrapped

    def create_module(self, spec):
        return self._wrapped.create_module(spec)

    def exec_module(self, module):
        self._wrapped.exec_module(module)
        if scann_tf_ops_loaded is False:
            module._HAVE_SCANN = False


class _Finder(importlib.abc.MetaPathFinder):
    """Wraps the normal loaders of the two modules above; finds nothing on its own."""

    WRAPPERS = {SCANN_TF_OPS_MODULE: _OpLibraryLoader, TFRS_TOP_K_MODULE: _TopKLoader}

    def find_spec(self, fullname, path, target=None):
        wrapper = self.WRAPPERS.get(fullname)
        if wrapper is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = wrapper(spec.loader)
        return spec


def _check_keras() -> None:
    if _KERAS_CHOICE_FIXED:
        raise RuntimeError(
            "TensorFlow was imported before tf_ccfrec.compat without TF_USE_LEGACY_KERAS=1, so "
            "tf.keras is Keras 3; TFRS needs Keras 2. Import tf_ccfrec.compat first.")


def install() -> None:
    """Installs the import hook (idempotent). Runs on import of this module."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
    _check_keras()


install()
