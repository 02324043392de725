"""The CCFRec tf_keras layers: shapes, masks, configs, and the losses against NumPy."""

import numpy as np
import pytest
import tensorflow as tf

from tf_ccfrec.layers.code_embedding import CodeTokenEmbedding, codes_to_tokens
from tf_ccfrec.layers.code_masker import CodeMasker
from tf_ccfrec.layers.code_guided_fusion import CodeGuidedFusion
from tf_ccfrec.layers.code_guided_fusion_block import CodeGuidedFusionBlock
from tf_ccfrec.layers.gelu import gelu
from tf_ccfrec.layers.hashed_id_embedding import HashedIdEmbedding, hashed_id_rows
from tf_ccfrec.layers.layer_norm import LayerNormalization
from tf_ccfrec.layers.masked_code_modeling_loss import MaskedCodeModelingLoss
from tf_ccfrec.layers.symmetric_info_nce import SymmetricInfoNCE
from tf_ccfrec.layers.seeded_attention import SeededMultiHeadAttention
from tf_ccfrec.layers.seeded_dropout import fold_seed, seeded_dropout
from tf_ccfrec.layers.causal_sequence_encoder import CausalSequenceEncoder
from tf_ccfrec.layers.causal_transformer_block import CausalTransformerBlock



@pytest.fixture(autouse=True)
def _seed():
    tf.keras.utils.set_random_seed(0)


def _round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    return clone


def test_codes_to_tokens_and_embedding():
    codes = np.array([[0, 255, 3], [1, 0, 0]])
    tokens = codes_to_tokens(codes, 256).numpy()
    assert tokens.tolist() == [[1, 512, 516], [2, 257, 513]]
    layer = CodeTokenEmbedding(num_codes=3, codebook_size=256, dim=8)
    out = layer(tokens)
    assert out.shape == (2, 3, 8)
    assert layer.vocab_size == 3 * 256 + 2 and layer.mask_token == 769
    assert float(tf.math.reduce_std(layer.embeddings)) == pytest.approx(0.02 * 0.88, rel=0.2)
    _round_trip(layer)


def test_hashed_id_rows_and_embedding():
    ids = [f"item-{i}" for i in range(500)]
    rows = hashed_id_rows(ids, 64)
    assert rows.dtype == np.int32 and rows.min() >= 1 and rows.max() <= 64
    # The rows follow the ids, not the order or the catalog they come in.
    np.testing.assert_array_equal(hashed_id_rows(ids[::-1], 64), rows[::-1])
    np.testing.assert_array_equal(hashed_id_rows(ids[:7], 64), rows[:7])
    # Spread as uniform draws: 500 ids fill 1 - (1 - 1/B)^500 of B buckets (B 64: all but
    # 0.03; B 1,000: 393.5 +- 7).
    assert len(set(rows.tolist())) == 64
    assert 370 < len(set(hashed_id_rows(ids, 1000).tolist())) < 420
    with pytest.raises(ValueError, match="buckets"):
        hashed_id_rows(ids, 0)
    layer = HashedIdEmbedding(buckets=64, dim=8)
    out = layer(tf.constant([[0, 1], [64, 5]]))
    assert out.shape == (2, 2, 8)
    np.testing.assert_array_equal(out.numpy(), np.zeros((2, 2, 8)))   # zeros at first
    layer.embeddings.assign(tf.random.normal((64, 8)))
    out = layer(tf.constant([[0, 1], [64, 5]])).numpy()
    table = layer.embeddings.numpy()
    np.testing.assert_array_equal(out[0, 0], np.zeros(8))             # row 0: no id
    np.testing.assert_allclose(out[0, 1], table[0] * 8 ** 0.5, rtol=1e-6)   # sqrt(dim)
    np.testing.assert_allclose(out[1], table[[63, 4]] * 8 ** 0.5, rtol=1e-6)
    assert _round_trip(layer).scale == 8 ** 0.5
    scaled = HashedIdEmbedding(buckets=64, dim=8, scale=1.0)
    scaled(tf.constant([1]))
    scaled.embeddings.assign(table)
    np.testing.assert_array_equal(scaled(tf.constant([64])).numpy()[0], table[63])


def test_fusion_shapes_and_item_vector():
    fusion = CodeGuidedFusion(num_layers=2, dim=16, num_heads=2, ffn_dim=32, dropout=0.0)
    h0 = tf.random.normal((4, 12, 16))
    views = tf.random.normal((4, 3, 16))
    item, hidden = fusion(h0, views)
    assert item.shape == (4, 16) and hidden.shape == (4, 12, 16)
    np.testing.assert_allclose(item, tf.reduce_mean(hidden, 1) + tf.reduce_mean(h0, 1), atol=1e-5)
    # The text matters: other view vectors give other items.
    other, _ = fusion(h0, tf.random.normal((4, 3, 16)))
    assert not np.allclose(item, other)
    clone = _round_trip(fusion)
    assert clone.num_layers == 2
    _round_trip(CodeGuidedFusionBlock(dim=16, num_heads=2, ffn_dim=32))


def test_bfloat16_fusion_computes_in_bfloat16_on_float32_variables():
    fusion = CodeGuidedFusion(num_layers=2, dim=16, num_heads=2, ffn_dim=32, dropout=0.0)
    mixed = CodeGuidedFusion(num_layers=2, dim=16, num_heads=2, ffn_dim=32, dropout=0.0,
                             dtype="mixed_bfloat16")
    h0, views = tf.random.normal((4, 12, 16)), tf.random.normal((4, 3, 16))
    item, _ = fusion(h0, views)
    mixed(h0, views)
    mixed.set_weights(fusion.get_weights())
    mixed_item, mixed_hidden = mixed(h0, views)
    assert mixed_item.dtype == tf.bfloat16 and mixed_hidden.dtype == tf.bfloat16
    # Every computing sub-layer follows the policy (the FFN's Sequential is only a container
    # whose layers are called one by one): bfloat16 compute, float32 variables.
    sublayers = [layer for layer in mixed._flatten_layers() if layer is not mixed and not
                 isinstance(layer, (tf.keras.Sequential, tf.keras.layers.InputLayer))]
    assert sublayers and all(layer.compute_dtype == "bfloat16" for layer in sublayers)
    assert all(v.dtype == tf.float32 for v in mixed.trainable_variables)
    # bfloat16 keeps 8 bits of mantissa: the same item vectors to about 1e-2.
    np.testing.assert_allclose(tf.cast(mixed_item, tf.float32), item, atol=0.1, rtol=0.05)
    assert _round_trip(mixed).dtype_policy.name == "mixed_bfloat16"


def test_seeded_dropout_is_a_function_of_seed_and_salt():
    x = tf.ones((200, 50))
    seed = tf.constant([1, 2])
    a = seeded_dropout(x, 0.3, seed, 0).numpy()
    np.testing.assert_array_equal(a, seeded_dropout(x, 0.3, seed, 0).numpy())
    assert not np.array_equal(a, seeded_dropout(x, 0.3, seed, 1).numpy())
    assert not np.array_equal(a, seeded_dropout(x, 0.3, tf.constant([1, 3]), 0).numpy())
    assert (a == 0).mean() == pytest.approx(0.3, abs=0.02)
    np.testing.assert_allclose(a[a > 0], 1 / 0.7, rtol=1e-6)
    assert seeded_dropout(x, 0.3, None, 0) is x


def test_seeded_dropout_rate_and_gradient_in_bfloat16():
    """The rate holds to 1/65536 in bfloat16 too (a bfloat16 uniform draw would drop 0.1016 for
    0.1), and the gradient is the output's mask times the scale."""
    x = tf.cast(tf.random.normal((1001, 999)), tf.bfloat16)  # an odd number of elements
    seed = tf.constant([5, 6])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = seeded_dropout(x, 0.1, seed, 0)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * 3.0)
    grad = tape.gradient(loss, x)
    kept = (y.numpy() != 0) | (x.numpy() == 0)
    assert y.dtype == tf.bfloat16 and grad.dtype == tf.bfloat16
    assert 1 - kept.mean() == pytest.approx(0.1, abs=0.001)
    np.testing.assert_allclose(grad.numpy().astype(np.float32), np.where(kept, 3 / 0.9, 0.0),
                               rtol=1e-2)


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_layer_norm_matches_keras_values_and_gradients(policy):
    ours = LayerNormalization(epsilon=1e-12, dtype=policy)
    keras = tf.keras.layers.LayerNormalization(epsilon=1e-12, dtype=policy)
    x = tf.random.normal((6, 5, 16)) * 3.0 + 1.0
    ours(x), keras(x)
    ours.set_weights([np.random.randn(16).astype(np.float32) for _ in range(2)])
    keras.set_weights(ours.get_weights())
    weights = tf.random.normal((6, 5, 16))
    results = []
    for layer in (ours, keras):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * weights)
        results.append([y] + tape.gradient(loss, [x] + layer.trainable_variables))
    assert results[0][0].dtype == results[1][0].dtype
    for a, b in zip(*results):
        np.testing.assert_allclose(tf.cast(a, tf.float32), tf.cast(b, tf.float32), atol=1e-4)
    assert _round_trip(ours).epsilon == 1e-12


def test_gelu_matches_keras_values_and_gradient():
    x = tf.random.normal((2000,)) * 3.0
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours, keras = gelu(x), tf.keras.activations.gelu(x, approximate=False)
    np.testing.assert_allclose(ours, keras, atol=1e-5)
    np.testing.assert_allclose(tape.gradient(ours, x), tape.gradient(keras, x), atol=1e-5)
    bf16 = gelu(tf.cast(x, tf.bfloat16))
    assert bf16.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(bf16, tf.float32), keras, atol=0.05, rtol=0.01)
    assert tf.keras.activations.deserialize(tf.keras.activations.serialize(gelu)) is gelu


def test_fusion_with_token_projections_equals_fusion_of_embeddings():
    """The first block's self-attention gathering table-row projections gives the outputs and
    gradients (the embedding table's included) of projecting every code token."""
    embedding = CodeTokenEmbedding(num_codes=4, codebook_size=8, dim=16)
    fusion = CodeGuidedFusion(num_layers=2, dim=16, num_heads=2, ffn_dim=32, dropout=0.2)
    tokens = tf.constant(np.random.default_rng(0).integers(1, 33, (50, 4)), tf.int32)
    views, seed = tf.random.normal((50, 3, 16)), tf.constant([1, 2])
    fusion(embedding(tokens), views)
    results = []
    for gathered in (False, True):
        with tf.GradientTape() as tape:
            extra = {}
            if gathered:
                extra = dict(tokens=tokens,
                             token_projections=fusion.project_tokens(embedding.embeddings))
            item, hidden = fusion(embedding(tokens), views, training=True, seed=seed, **extra)
            loss = tf.reduce_sum(item * tf.range(16, dtype=tf.float32)) + tf.reduce_sum(hidden)
        grads = tape.gradient(loss, [embedding.embeddings] + fusion.trainable_variables)
        results.append([item, hidden] + [tf.convert_to_tensor(g) for g in grads])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("inner_dropout", [False, True])
def test_fusion_block_dropout_sites(inner_dropout):
    """In training the block drops out each sub-layer's output, and the FFN's inner activations
    only with inner_dropout: the same output as its sub-layers called with those masks."""
    block = CodeGuidedFusionBlock(dim=16, num_heads=2, ffn_dim=32, dropout=0.3,
                                  inner_dropout=inner_dropout)
    codes, views = tf.random.normal((4, 12, 16)), tf.random.normal((4, 3, 16))
    seed = tf.constant([7, 8])
    out = block(codes, views, training=True, seed=seed)

    def drop(x, salt):
        return seeded_dropout(x, 0.3, seed, salt)

    h = block.norms[0](codes + drop(block.self_attention(codes, codes, seed=fold_seed(seed, 1)),
                                    2))
    h = block.norms[1](h + drop(block.cross_attention(h, views, seed=fold_seed(seed, 3)), 4))
    inner, _, outer = block.ffn.layers
    hidden = drop(inner(h), 5) if inner_dropout else inner(h)
    np.testing.assert_allclose(out, block.norms[2](h + drop(outer(hidden), 6)), atol=1e-5)
    assert _round_trip(block).inner_dropout == inner_dropout


def test_seeded_attention_equals_keras_attention_without_dropout():
    query, value = tf.random.normal((3, 5, 16)), tf.random.normal((3, 4, 16))
    keras = tf.keras.layers.MultiHeadAttention(2, 8)
    seeded = SeededMultiHeadAttention(2, 8)
    expected = keras(query, value)
    seeded(query, value)
    seeded.set_weights(keras.get_weights())
    np.testing.assert_allclose(seeded(query, value), expected, atol=1e-5)
    # Training: the probabilities' dropout follows the seed.
    dropping = SeededMultiHeadAttention(2, 8, dropout=0.5)
    dropping(query, value)
    dropping.set_weights(keras.get_weights())
    seed = tf.constant([4, 5])
    first = dropping(query, value, seed=seed).numpy()
    np.testing.assert_array_equal(first, dropping(query, value, seed=seed).numpy())
    assert not np.allclose(first, expected, atol=1e-3)
    clone = SeededMultiHeadAttention.from_config(dropping.get_config())
    assert (clone.get_config()["num_heads"], clone.get_config()["dropout"]) == (2, 0.5)


def test_fusion_dropout_follows_the_seed_in_training_only():
    fusion = CodeGuidedFusion(num_layers=2, dim=16, num_heads=2, ffn_dim=32, dropout=0.2)
    h0, views = tf.random.normal((4, 12, 16)), tf.random.normal((4, 3, 16))
    seed = tf.constant([7, 8])
    item, _ = fusion(h0, views, training=True, seed=seed)
    np.testing.assert_array_equal(item, fusion(h0, views, training=True, seed=seed)[0])
    assert not np.allclose(item, fusion(h0, views, training=True, seed=seed + 1)[0])
    assert not np.allclose(item, fusion(h0, views, training=True)[0])
    inference = fusion(h0, views)[0]
    np.testing.assert_array_equal(inference, fusion(h0, views, seed=seed)[0])


def test_sequence_encoder_is_causal_and_ignores_padding():
    encoder = CausalSequenceEncoder(max_length=6, num_layers=2, dim=16, num_heads=2, ffn_dim=32,
                                    dropout=0.0)
    x = tf.random.normal((2, 6, 16))
    mask = tf.constant([[False, False, True, True, True, True], [True] * 6])
    user, outputs = encoder(x, mask)
    assert user.shape == (2, 16) and outputs.shape == (2, 6, 16)
    np.testing.assert_allclose(user, outputs[:, -1])
    # Changing the last item changes nothing before it (causal).
    x2 = tf.concat([x[:, :-1], tf.random.normal((2, 1, 16))], axis=1)
    _, outputs2 = encoder(x2, mask)
    np.testing.assert_allclose(outputs2[:, :-1], outputs[:, :-1], atol=1e-5)
    assert not np.allclose(outputs2[:, -1], outputs[:, -1])
    # Changing padded positions does not change the user vector.
    x3 = tf.concat([tf.random.normal((2, 2, 16)), x[:, 2:]], axis=1)
    user3, _ = encoder(x3, mask)
    np.testing.assert_allclose(user3[0], user[0], atol=1e-5)
    # Shorter inputs use the last position embeddings.
    user_short, _ = encoder(x[:, 2:], mask[:, 2:])
    np.testing.assert_allclose(user_short[0], user[0], atol=1e-5)
    _round_trip(encoder)


def test_code_masker_rates():
    num_codes, k = 12, 256
    masker = CodeMasker(num_codes=num_codes, codebook_size=k, mask_token=num_codes * k + 1,
                        mask_prob=0.5, seed=1)
    rng = np.random.default_rng(0)
    tokens = codes_to_tokens(rng.integers(0, k, (2000, num_codes)), k).numpy()
    tokens[:100] = 0  # padding rows
    masked, selected = (t.numpy() for t in masker(tokens, training=True))
    assert not selected[:100].any() and (masked[:100] == 0).all()
    real = selected[100:]
    assert real.mean() == pytest.approx(0.5, abs=0.01)
    chosen_masked, chosen_orig = masked[100:][real], tokens[100:][real]
    as_mask = chosen_masked == num_codes * k + 1
    unchanged = chosen_masked == chosen_orig
    assert as_mask.mean() == pytest.approx(0.8, abs=0.01)
    assert unchanged.mean() == pytest.approx(0.1 + 0.1 / k, abs=0.01)
    # Random replacements stay in their own position's token range.
    positions = np.broadcast_to(np.arange(num_codes), tokens.shape)[100:][real]
    replaced = chosen_masked[~as_mask]
    assert ((replaced - 1) // k == positions[~as_mask]).all()
    assert (masked[100:][~real] == tokens[100:][~real]).all()
    same, none = masker(tokens, training=False)
    np.testing.assert_array_equal(same, tokens)
    assert not none.numpy().any()
    _round_trip(masker)


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_mcm_loss_matches_numpy():
    rng = np.random.default_rng(0)
    hidden = rng.standard_normal((3, 4, 8)).astype(np.float32)
    table = rng.standard_normal((10, 8)).astype(np.float32)
    targets = rng.integers(1, 9, (3, 4))
    selected = rng.random((3, 4)) < 0.5
    loss = MaskedCodeModelingLoss(temperature=0.07)(hidden, table, targets, selected)
    h = hidden[selected] / np.linalg.norm(hidden[selected], axis=-1, keepdims=True)
    e = table / np.linalg.norm(table, axis=-1, keepdims=True)
    logits = (h @ e.T / 0.07)[:, 1:9]  # padding (0) and [MASK] (9) are not candidates
    expected = -_log_softmax(logits)[np.arange(len(h)), targets[selected] - 1].mean()
    assert float(loss) == pytest.approx(expected, rel=1e-4)
    zero = MaskedCodeModelingLoss()(hidden, table, targets, np.zeros((3, 4), bool))
    assert float(zero) == 0.0


def test_info_nce_matches_numpy():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((5, 8)).astype(np.float32)
    b = rng.standard_normal((5, 8)).astype(np.float32)
    loss = SymmetricInfoNCE(temperature=0.07)(a, b)
    an = a / np.linalg.norm(a, axis=1, keepdims=True)
    bn = b / np.linalg.norm(b, axis=1, keepdims=True)
    logits = an @ bn.T / 0.07
    expected = 0.5 * (-np.diag(_log_softmax(logits)).mean() - np.diag(_log_softmax(logits.T)).mean())
    assert float(loss) == pytest.approx(expected, rel=1e-4)
    # Aligned pairs give a lower loss than shuffled ones.
    assert float(SymmetricInfoNCE()(a, a)) < float(SymmetricInfoNCE()(a, b))
    _round_trip(SymmetricInfoNCE(temperature=0.1))


def _inputs(rng):
    """Inputs of every layer's call, batch 2: codes 3 per item, dim 8, history 4."""
    mask = np.array([[False, True, True, True], [True, True, True, True]])
    causal = np.tril(np.ones((4, 4), bool))[None] & mask[:, None, :] | np.eye(4, dtype=bool)[None]
    return {
        "float3": tf.constant(rng.normal(size=(2, 3, 8)), tf.float32),
        "views": tf.constant(rng.normal(size=(2, 2, 8)), tf.float32),
        "history": tf.constant(rng.normal(size=(2, 4, 8)), tf.float32),
        "mask": tf.constant(mask), "causal": tf.constant(causal),
        "tokens": codes_to_tokens(np.array([[0, 5, 3], [1, 0, 2]]), 8),
        "table": tf.constant(rng.normal(size=(3 * 8 + 2, 8)), tf.float32),
        "users": tf.constant(rng.normal(size=(2, 8)), tf.float32),
    }


# Every layer of tf_ccfrec.layers: (constructor, call on the inputs above).
LAYERS = {
    "CodeTokenEmbedding": (lambda: CodeTokenEmbedding(num_codes=3, codebook_size=8, dim=8),
                           lambda layer, x: layer(x["tokens"])),
    "HashedIdEmbedding": (lambda: HashedIdEmbedding(buckets=5, dim=8),
                          lambda layer, x: layer(tf.constant([[0, 1, 5], [2, 3, 4]]))),
    "CodeMasker": (lambda: CodeMasker(num_codes=3, codebook_size=8, mask_token=25, seed=3),
                   lambda layer, x: layer(x["tokens"], training=True)),
    "CodeGuidedFusionBlock": (
        lambda: CodeGuidedFusionBlock(dim=8, num_heads=2, ffn_dim=16, dropout=0.1),
        lambda layer, x: layer(x["float3"], x["views"])),
    "CodeGuidedFusion": (lambda: CodeGuidedFusion(num_layers=2, dim=8, num_heads=2, ffn_dim=16),
                         lambda layer, x: layer(x["float3"], x["views"])),
    "CausalTransformerBlock": (
        lambda: CausalTransformerBlock(dim=8, num_heads=2, ffn_dim=16, inner_dropout=True),
        lambda layer, x: layer(x["history"], x["causal"])),
    "CausalSequenceEncoder": (
        lambda: CausalSequenceEncoder(max_length=4, num_layers=2, dim=8, num_heads=2,
                                      ffn_dim=16),
        lambda layer, x: layer(x["history"], x["mask"])),
    "LayerNormalization": (lambda: LayerNormalization(epsilon=1e-12),
                           lambda layer, x: layer(x["float3"])),
    "SeededMultiHeadAttention": (lambda: SeededMultiHeadAttention(2, 4, dropout=0.5),
                                 lambda layer, x: layer(x["float3"], x["views"])),
    "MaskedCodeModelingLoss": (
        lambda: MaskedCodeModelingLoss(temperature=0.1),
        lambda layer, x: layer(x["float3"], x["table"], x["tokens"], x["tokens"] > 0)),
    "SymmetricInfoNCE": (lambda: SymmetricInfoNCE(temperature=0.1),
                         lambda layer, x: layer(x["users"], x["users"] * 2.0)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_save_and_load_round_trip(name, tmp_path):
    """Each layer saved (its config as JSON, its variables as a checkpoint) and loaded into a
    new layer from that config gives the same outputs in inference."""
    import json

    make, call = LAYERS[name]
    layer = make()
    x = _inputs(np.random.default_rng(0))
    call(layer, x)                                       # builds the variables
    # Training moves the variables off their initial values, so a load that did nothing fails.
    for variable in layer.trainable_variables:
        variable.assign_add(tf.random.normal(variable.shape, stddev=0.1, dtype=variable.dtype))
    expected = tf.nest.flatten(call(layer, x))
    (tmp_path / "config.json").write_text(json.dumps(tf.keras.utils.serialize_keras_object(layer)))
    path = tf.train.Checkpoint(layer=layer).write(str(tmp_path / "weights"))

    loaded = tf.keras.utils.deserialize_keras_object(
        json.loads((tmp_path / "config.json").read_text()))
    assert type(loaded) is type(layer) and loaded.get_config() == layer.get_config()
    call(loaded, x)
    tf.train.Checkpoint(layer=loaded).read(path).assert_consumed()
    if name == "CodeMasker":  # its state is the random generator: the same draws from here on
        expected = tf.nest.flatten(call(layer, x))
    got = tf.nest.flatten(call(loaded, x))
    for want, have in zip(expected, got):
        np.testing.assert_allclose(np.asarray(have), np.asarray(want), rtol=1e-6, atol=1e-6)
