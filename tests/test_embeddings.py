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
    # Indexed: each distinct text once, indexing as the full array.
    indexed = embeddings.embed_views(["b", "a", "c"], items, ["title", "brand"], text_encoder,
                                     cache_dir=str(tmp_path), indexed=True)["vectors"]
    full = embeddings.embed_views(["b", "a", "c"], items, ["title", "brand"], text_encoder,
                                  cache_dir=str(tmp_path))["vectors"]
    assert indexed.shape == full.shape == (3, 2, 384) and len(indexed.table) == 4
    np.testing.assert_array_equal(np.asarray(indexed), full)
    np.testing.assert_array_equal(indexed[1:3, 1], full[1:3, 1])
    np.testing.assert_array_equal(indexed[2], full[2])


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


@pytest.mark.slow
def test_beam_workers_embed_what_one_process_embeds(tmp_path, text_encoder):
    """RunInference on 2 DirectRunner worker processes writes the missing texts into the cache,
    equal to in-process embeddings; a second run finds them all there."""
    from tf_ccfrec.text import beam_embeddings

    items = {f"i{n}": {"title": f"{color} {thing} number {n}", "brand": brand}
             for n, (color, thing, brand) in enumerate(
                 [(c, t, b) for c in ("red", "blue", "green") for t in ("pen", "stapler")
                  for b in ("Pilot", "Bic", "")])}
    # The texts reach the workers through a file of JSON lines: line breaks survive it.
    items["odd"] = {"title": 'two\nlines, "quoted"\u2028and\r\nmore', "brand": "Bic"}
    ids = sorted(items)
    pipeline = beam_embeddings.make_pipeline(beam_embeddings.direct_pipeline_args(2))
    through_beam = embeddings.embed_views(ids, items, ["title", "brand"], text_encoder,
                                          cache_dir=str(tmp_path), beam_pipeline=pipeline,
                                          worker_threads=1)
    in_process = embeddings.embed_views(ids, items, ["title", "brand"], text_encoder,
                                        cache_dir="")
    assert through_beam["embedded"] == through_beam["distinct_texts"] == 19 + 3
    np.testing.assert_allclose(through_beam["vectors"], in_process["vectors"], atol=1e-5)
    shards = list((tmp_path / text_encoder.fingerprint).glob("*.npz"))
    assert shards and sum(len(np.load(s)["keys"]) for s in shards) == 22
    # Only shards are left: the file of pending texts is gone.
    assert {p.suffix for p in (tmp_path / text_encoder.fingerprint).iterdir()} == {".npz"}
    again = embeddings.embed_views(ids, items, ["title", "brand"], text_encoder,
                                   cache_dir=str(tmp_path), beam_pipeline=beam_embeddings
                                   .make_pipeline(beam_embeddings.direct_pipeline_args(2)))
    assert (again["embedded"], again["cached"]) == (0, 22)
    np.testing.assert_array_equal(again["vectors"], through_beam["vectors"])
    # Without a cache, the workers' temporary one is removed afterwards.
    uncached = embeddings.embed_views(ids[:2], items, ["title"], text_encoder, cache_dir="",
                                      beam_pipeline=beam_embeddings.make_pipeline(
                                          beam_embeddings.direct_pipeline_args(1)))
    np.testing.assert_allclose(uncached["vectors"], in_process["vectors"][:2, :1], atol=1e-5)


def test_precisions_and_graphs_are_cached_apart(text_encoder):
    """bfloat16 vectors are cached apart from float32 ones, and the fused graph's apart from the
    Keras model's (float32 vectors of the two graphs are the same to rounding: one key)."""
    path = encoder.minilm_checkpoint_dir()
    bfloat16 = embeddings.TextEncoder(path, precision="bfloat16")
    keras_bfloat16 = embeddings.TextEncoder(path, precision="bfloat16", graph="keras")
    keras_float32 = embeddings.TextEncoder(path, graph="keras")
    assert keras_float32.fingerprint == text_encoder.fingerprint
    assert bfloat16.fingerprint == text_encoder.fingerprint + "-bfloat16-fused"
    assert keras_bfloat16.fingerprint == text_encoder.fingerprint + "-bfloat16"
    a, b = text_encoder.embed(TEXTS), bfloat16.embed(TEXTS)
    assert b.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    fused_cosine = np.sum(a * b, axis=1)
    keras_cosine = np.sum(a * keras_bfloat16.embed(TEXTS), axis=1)
    # The fused graph keeps float32 between its bfloat16 products: closer to float32.
    assert np.min(fused_cosine) > 0.9995 and np.min(keras_cosine) > 0.99
    assert np.mean(1 - fused_cosine) < np.mean(1 - keras_cosine)
    with pytest.raises(ValueError, match="precision"):
        encoder.load_text_embedder(precision="float16")
    with pytest.raises(ValueError, match="graph must be one of"):
        embeddings.TextEncoder(path, graph="xla")


def test_the_fused_graph_is_the_keras_models_function(text_encoder, office_dir):
    """Real item texts from a few tokens to the 256-token cap, in one padded batch and one by
    one: the fused graph's float32 vectors are the Keras model's."""
    from tf_ccfrec.data import readers

    data = readers.read("lcrec", office_dir)
    texts = sorted({t for item in list(data.items.values())[:40] for t in item.values()},
                   key=len)
    texts = texts[:: max(1, len(texts) // 24)] + [texts[-1]]
    keras_graph = embeddings.TextEncoder(encoder.minilm_checkpoint_dir(), graph="keras",
                                         batch_tokens=1 << 20)
    fused = text_encoder.embed(texts)
    one_by_one = np.concatenate([text_encoder.embed([t]) for t in texts])
    reference = keras_graph.embed(texts)
    assert max(len(ids) for ids in text_encoder.token_ids(texts)) == embeddings.MAX_TOKENS
    np.testing.assert_allclose(fused, reference, atol=2e-5)
    np.testing.assert_allclose(one_by_one, reference, atol=2e-5)


def test_the_fused_graph_needs_mean_pooling(text_encoder):
    from keras_hub.models import BertTextEmbedder

    from tf_ccfrec.text import bert_graph

    cls = BertTextEmbedder(backbone=text_encoder.model.backbone, preprocessor=None,
                           pooling_mode="cls")
    with pytest.raises(ValueError, match="pools by 'cls'"):
        bert_graph.fused_embedder(cls)
