"""Multi-view embeddings: dynamic padding equals fixed padding, and the cache skips known texts."""

import numpy as np
import pytest

from tf_ccfrec.text import embeddings, encoder


@pytest.fixture(scope="module")
def text_encoder():
    return embeddings.TextEncoder(encoder.minilm_checkpoint_dir(), batch_tokens=64)


TEXTS = ["A man is eating food.", "", "pens", "HP 61 ink cartridge, black, " * 60,
         "A man is eating a piece of bread."]


def test_dynamic_padding_equals_fixed_padding(text_encoder):
    dynamic = text_encoder.embed(TEXTS)
    fixed = encoder.encode(text_encoder.model, TEXTS)  # the preprocessor pads to its length
    long_text = 3  # longer than MAX_TOKENS is truncated the same way by both
    np.testing.assert_allclose(np.delete(dynamic, long_text, 0), np.delete(fixed, long_text, 0),
                               atol=1e-5)
    assert dynamic[0] @ dynamic[4] == pytest.approx(0.755, abs=0.01)


def test_token_ids_are_truncated(text_encoder):
    ids = text_encoder.token_ids(TEXTS)
    assert len(ids[3]) == embeddings.MAX_TOKENS
    assert ids[1].tolist() == [text_encoder.tokenizer.cls_token_id,
                               text_encoder.tokenizer.sep_token_id]


def test_embed_views_uses_the_cache(tmp_path, text_encoder):
    items = {"a": {"title": "red pen", "brand": "Pilot"}, "b": {"title": "blue pen", "brand": ""},
             "c": {"title": "red pen", "brand": "Pilot"}}
    first = embeddings.embed_views(["a", "b", "c"], items, ["title", "brand"], text_encoder,
                                   cache_dir=str(tmp_path))
    assert first["vectors"].shape == (3, 2, 384)
    assert (first["embedded"], first["cached"], first["distinct_texts"]) == (4, 0, 4)
    np.testing.assert_array_equal(first["vectors"][0], first["vectors"][2])
    items["b"] = {"title": "blue pen", "brand": "Bic"}  # one changed text
    second = embeddings.embed_views(["b", "a"], items, ["title", "brand"], text_encoder,
                                    cache_dir=str(tmp_path))
    assert (second["embedded"], second["cached"]) == (1, 3)
    np.testing.assert_array_equal(second["vectors"][1], first["vectors"][0])
    np.testing.assert_allclose(second["vectors"][0, 1], text_encoder.embed(["Bic"])[0], atol=1e-6)
    uncached = embeddings.embed_views(["a"], items, ["title"], text_encoder, cache_dir="")
    assert uncached["embedded"] == 1


def test_cache_is_per_encoder(tmp_path):
    cache = embeddings.EmbeddingCache(str(tmp_path), "encoder-a")
    cache.add(["k"], np.ones((1, 3), np.float32))
    assert "k" in embeddings.EmbeddingCache(str(tmp_path), "encoder-a").vectors
    assert embeddings.EmbeddingCache(str(tmp_path), "encoder-b").vectors == {}


def test_encoder_fingerprint_follows_content(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    before = embeddings.encoder_fingerprint(str(tmp_path))
    (tmp_path / "config.json").write_text('{"x": 1}')
    assert embeddings.encoder_fingerprint(str(tmp_path)) != before
