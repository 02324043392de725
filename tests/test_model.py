"""The CCFRec tfrs.Model: towers, losses, gradients, input pipeline, full-ranking evaluation."""

import numpy as np
import pytest
import tensorflow as tf

from tf_ccfrec import ranking
from tf_ccfrec.data import prepare
from tf_ccfrec.layers.hashed_id_embedding import hashed_id_rows
from tf_ccfrec.models.ccfrec import CCFRecModel
from tf_ccfrec.models.config import ModelConfig
from tf_ccfrec.training import evaluation, inputs

NUM_ITEMS, NUM_CODES, VIEWS, DIM, K = 50, 8, 2, 16, 16



@pytest.fixture(autouse=True)
def _seed():
    tf.keras.utils.set_random_seed(0)


def _model(**overrides):
    rng = np.random.default_rng(0)
    config = ModelConfig(**{"dim": DIM, "ffn_dim": 32, "max_history": 5, "dropout": 0.0,
                             **overrides})
    codes = rng.integers(0, K, (NUM_ITEMS, NUM_CODES))
    views = rng.standard_normal((NUM_ITEMS, VIEWS, DIM)).astype(np.float32)
    return CCFRecModel(config, codes, views, codebook_size=K, seed=0)


def _batch():
    return {"history": tf.constant([[0, 0, 3, 4, 5], [1, 2, 3, 4, 5], [0, 0, 0, 0, 7]]),
            "target": tf.constant([6, 10, 50])}


def test_scores_cover_the_catalog():
    model = _model()
    scores = model(_batch())
    assert scores.shape == (3, NUM_ITEMS)
    assert float(tf.reduce_max(tf.abs(scores))) <= 1 / 0.07 + 1e-3  # cosine / tau
    table = model.item_vectors()
    assert table.shape == (NUM_ITEMS + 1, DIM)
    np.testing.assert_array_equal(table[0], np.zeros(DIM))


@pytest.mark.parametrize("loss", ["full", "sampled"])
def test_every_weight_gets_a_gradient(loss):
    model = _model(loss=loss, num_negatives=20)
    with tf.GradientTape() as tape:
        value = model.compute_loss(_batch(), training=True)
    grads = tape.gradient(value, model.trainable_variables)
    assert np.isfinite(float(value)) and float(value) > 0
    missing = [v.name for v, g in zip(model.trainable_variables, grads) if g is None]
    assert missing == []


def test_loss_is_the_recommendation_loss_plus_the_masked_objectives():
    model = _model()
    batch = _batch()
    table = model.item_vectors()
    users = model.user_vectors(batch["history"], table)
    rec = float(model.full_softmax_loss(users, table, batch["target"]))
    logits = model.scores(users, table).numpy()
    shifted = logits - logits.max(1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    assert rec == pytest.approx(-logp[np.arange(3), batch["target"].numpy() - 1].mean(), rel=1e-4)
    total = float(model.compute_loss(batch))
    mcm, msa = (float(x) for x in model.masked_objectives(batch["history"], users))
    assert mcm > 0 and msa > 0
    assert total > rec  # lambda_MCM * L_MCM + lambda_MSA * L_MSA, both positive
    without = _model(mcm_weight=0.0, msa_weight=0.0)
    table = without.item_vectors()
    own_rec = without.full_softmax_loss(without.user_vectors(batch["history"], table), table,
                                        batch["target"])
    assert float(without.compute_loss(batch)) == pytest.approx(float(own_rec), rel=1e-5)


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_sampled_loss_against_numpy():
    """Mean over the batch of the softmax over in-batch targets + shared negatives, logits
    corrected by log q, accidental hits (a candidate equal to the row's target) removed."""
    model = _model(loss="sampled", num_negatives=4)
    rng = np.random.default_rng(4)
    users = rng.standard_normal((3, DIM)).astype(np.float32)
    targets = np.array([6, 10, 6], np.int32)
    negatives = np.array([10, 2, 3, 40], np.int32)
    target_vectors = rng.standard_normal((3, DIM)).astype(np.float32)
    negative_vectors = rng.standard_normal((4, DIM)).astype(np.float32)
    loss = float(model.sampled_softmax_loss(users, targets, target_vectors, negatives,
                                            negative_vectors))
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    candidates = np.concatenate([targets, negatives])
    logits = unit(users) @ unit(np.concatenate([target_vectors, negative_vectors])).T / 0.07
    # Expected copies among the candidates: in-batch counts, num_negatives / num_items.
    q = np.concatenate([[2, 1, 2], np.full(4, 4 / NUM_ITEMS)])
    logits = logits - np.log(q)
    expected = []
    for row in range(3):
        hits = (candidates == targets[row]) & (np.arange(7) != row)
        expected.append(-_log_softmax(np.where(hits, -np.inf, logits[row]))[row])
    assert loss == pytest.approx(np.mean(expected), rel=1e-4)


def test_negatives_from_the_trained_items_only():
    """`negatives_from="trained"`: the shared negatives come only from the pool (items with
    training interactions), and log q counts num_negatives / pool size copies of each."""
    model = _model(loss="sampled", num_negatives=64, negatives_from="trained",
                   mcm_weight=0.0, msa_weight=0.0)
    pool = np.array([2, 5, 11, 17], np.int32)
    model.set_negative_pool(pool)
    drawn, size = model.draw_negatives()
    assert size == 4 and set(drawn.numpy()) <= set(pool) and len(set(drawn.numpy())) > 1
    rng = np.random.default_rng(6)
    users = rng.standard_normal((2, DIM)).astype(np.float32)
    targets = np.array([3, 9], np.int32)
    negatives = np.array([2, 5], np.int32)
    vectors = rng.standard_normal((4, DIM)).astype(np.float32)
    loss = float(model.sampled_softmax_loss(users, targets, vectors[:2], negatives, vectors[2:],
                                            pool_size=400))
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    logits = unit(users) @ unit(vectors).T / 0.07 - np.log([1, 1, 64 / 400, 64 / 400])
    expected = [-_log_softmax(logits[row])[row] for row in range(2)]
    assert loss == pytest.approx(np.mean(expected), rel=1e-4)
    # Training draws from the pool: the step's loss equals the loss on the pool's draws.
    batch = _batch()
    tf.random.set_seed(3)
    step = float(model.compute_loss(batch))
    tf.random.set_seed(3)
    drawn, _ = model.draw_negatives()
    table = model.item_vectors()
    expected = model.sampled_softmax_loss(
        model.user_vectors(batch["history"], table), batch["target"],
        tf.gather(table, batch["target"]), drawn, tf.gather(table, drawn), pool_size=4)
    assert step == pytest.approx(float(expected), rel=1e-5)
    with pytest.raises(ValueError, match="negatives_from must be one of"):
        ModelConfig(negatives_from="popular")


def test_sampled_loss_with_history_negatives_against_numpy():
    """Each row also scores its own distinct history items (padding and the row's target left
    out) counting as `history_negative_weight` copies; a shared candidate in the row's history
    is masked for it."""
    model = _model(loss="sampled", num_negatives=4, history_negative_weight=3.0)
    rng = np.random.default_rng(5)
    users = rng.standard_normal((3, DIM)).astype(np.float32)
    targets = np.array([6, 10, 6], np.int32)
    negatives = np.array([10, 2, 3, 40], np.int32)
    # Row 0 repeats 7 and has negative 3 in its history; row 1 has its target 10 (a repeat
    # visit) and row 0's target 6; row 2 is all padding but one item.
    history = np.array([[0, 7, 3, 7, 8], [6, 10, 1, 2, 9], [0, 0, 0, 0, 11]], np.int32)
    item_vectors = rng.standard_normal((NUM_ITEMS + 1, DIM)).astype(np.float32)
    loss = float(model.sampled_softmax_loss(
        users, targets, item_vectors[targets], negatives, item_vectors[negatives],
        history, item_vectors[history]))
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    shared = np.concatenate([targets, negatives])
    shared_logits = (unit(users) @ unit(item_vectors[shared]).T / 0.07
                     - np.log(np.concatenate([[2, 1, 2], np.full(4, 4 / NUM_ITEMS)])))
    expected = []
    for row in range(3):
        own = [i for i in dict.fromkeys(history[row]) if i and i != targets[row]]
        masked = (np.isin(shared, list(history[row])) | (shared == targets[row])) & (
            np.arange(7) != row)
        logits = np.concatenate([np.where(masked, -np.inf, shared_logits[row]),
                                 unit(users[row]) @ unit(item_vectors[own]).T / 0.07
                                 + np.log(3.0)])
        expected.append(-_log_softmax(logits)[row])
    assert loss == pytest.approx(np.mean(expected), rel=1e-4)
    with pytest.raises(ValueError, match="history_negative_weight must be >= 0"):
        ModelConfig(history_negative_weight=-1.0)


@pytest.mark.parametrize("history_negative_weight,history_vector",
                         [(0.0, "paper"), (1.0, "paper"), (0.0, "release")])
def test_sampled_loss_fuses_only_the_step_items_and_matches_the_catalog_path(
        history_negative_weight, history_vector):
    model = _model(loss="sampled", num_negatives=6, mcm_weight=0.0, msa_weight=0.0,
                   history_negative_weight=history_negative_weight,
                   history_vector=history_vector)
    batch = _batch()
    tf.random.set_seed(7)
    loss = float(model.compute_loss(batch))
    tf.random.set_seed(7)
    negatives = tf.random.uniform([6], 1, NUM_ITEMS + 1, dtype=tf.int32)
    table = model.item_vectors()
    users = model.user_vectors(batch["history"], table)
    history = ((batch["history"], tf.gather(table, batch["history"]))
               if history_negative_weight else ())
    expected = model.sampled_softmax_loss(users, batch["target"],
                                          tf.gather(table, batch["target"]), negatives,
                                          tf.gather(table, negatives), *history)
    assert loss == pytest.approx(float(expected), rel=1e-5)


def test_chunked_catalog_fusion_equals_fusing_at_once():
    chunked, whole = _model(fusion_chunk=7), _model(fusion_chunk=0)
    whole.compute_loss(_batch())
    chunked.compute_loss(_batch())
    whole.set_weights(chunked.get_weights())
    np.testing.assert_allclose(chunked.item_vectors().numpy(), whole.item_vectors().numpy(),
                               atol=1e-5)
    # The catalog's chunks gathered one at a time: what splitting the gathered catalog gives.
    items = tf.range(1, NUM_ITEMS + 1)
    split = chunked.fuse_in_chunks(tf.gather(chunked.code_tokens, items),
                                   tf.gather(chunked.view_vectors, items))[0]
    np.testing.assert_array_equal(chunked.vectors_of(items).numpy(), split.numpy())
    with tf.GradientTape() as tape:
        loss = chunked.compute_loss(_batch(), training=True)
    assert all(g is not None for g in tape.gradient(loss, chunked.trainable_variables))


def _fusion_gradients(model, tokens, views, seed):
    with tf.GradientTape() as tape:
        items, hidden = model.fuse_in_chunks(tokens, views, training=True) if seed is None \
            else model.fuse(tokens, views, training=True, seed=seed)
        loss = tf.reduce_sum(items ** 2) + tf.reduce_sum(tf.sin(hidden))
    return loss, tape.gradient(loss, model.trainable_variables)


def test_recomputed_fusion_has_the_gradients_of_the_kept_one():
    recomputed, kept = _model(dropout=0.3), _model(dropout=0.3, recompute=False)
    kept.set_weights(recomputed.get_weights())
    items = tf.range(1, NUM_ITEMS + 1)
    tokens, views = tf.gather(kept.code_tokens, items), tf.gather(kept.view_vectors, items)
    seed = tf.constant([3, 4])
    for run in (lambda m: _fusion_gradients(m, tokens, views, seed),
                tf.function(lambda m: _fusion_gradients(m, tokens, views, seed))):
        loss, grads = run(recomputed)
        kept_loss, kept_grads = run(kept)
        assert float(loss) == pytest.approx(float(kept_loss), rel=1e-6)
        fusion_grads = [(g, k) for g, k, v in zip(grads, kept_grads,
                                                  recomputed.trainable_variables)
                        if v.name.startswith(("fusion", "code_embedding"))]
        assert fusion_grads and all(g is not None for g, _ in fusion_grads)
        for g, k in fusion_grads:
            np.testing.assert_allclose(tf.convert_to_tensor(g), tf.convert_to_tensor(k),
                                       atol=1e-5)


@pytest.mark.parametrize("recompute", [True, False])
def test_bfloat16_fusion_trains_every_variable_in_float32(recompute):
    mixed = _model(precision="mixed_bfloat16", recompute=recompute, dropout=0.1)
    plain = _model()
    batch = _batch()
    mixed(batch), plain(batch)  # builds the sequence encoders
    plain.set_weights(mixed.get_weights())
    with tf.GradientTape() as tape:
        loss = mixed.compute_loss(batch, training=True)
    grads = tape.gradient(loss, mixed.trainable_variables)
    assert np.isfinite(float(loss))
    assert [v.name for v, g in zip(mixed.trainable_variables, grads) if g is None] == []
    assert all(v.dtype == tf.float32 and g.dtype == tf.float32
               for v, g in zip(mixed.trainable_variables, grads))
    # The towers hand float32 on; item vectors and scores agree with float32 to bf16 precision.
    table = mixed.item_vectors()
    assert table.dtype == tf.float32
    np.testing.assert_allclose(table, plain.item_vectors(), atol=0.1, rtol=0.05)
    np.testing.assert_allclose(mixed(batch), plain(batch), atol=0.1 / mixed.config.temperature)


def test_fusion_in_chunks_of_unknown_count_equals_fusing_at_once():
    chunked, whole = _model(fusion_chunk=4), _model(fusion_chunk=0)
    whole.set_weights(chunked.get_weights())
    items = tf.constant([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4, 6, 2, 6])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
    def fused(items):  # the count is unknown while tracing
        tokens = tf.gather(chunked.code_tokens, items)
        return chunked.fuse_in_chunks(tokens, tf.gather(chunked.view_vectors, items))

    for count in (23, 3, 0, 90):  # more than 16 chunks of 4: larger chunks
        some = tf.tile(items, [4])[:count]
        vectors, hidden = fused(some)
        expected = whole.fuse(tf.gather(whole.code_tokens, some),
                              tf.gather(whole.view_vectors, some))
        assert vectors.shape == (count, DIM) and hidden.shape == (count, NUM_CODES, DIM)
        np.testing.assert_allclose(vectors, expected[0], atol=1e-5)
        np.testing.assert_allclose(hidden, expected[1], atol=1e-5)


def test_release_history_vectors_leave_the_code_embeddings_out():
    """history_vector="release": the encoder reads mean_j H_L[j] of each history item (the
    masked history too), candidates stay mean_j H_L[j] + mean_j H0[j]."""
    model = _model(history_vector="release")
    tf.keras.utils.set_random_seed(0)
    paper = _model()
    batch = _batch()
    table = model.item_vectors()
    np.testing.assert_allclose(table.numpy(), paper.item_vectors().numpy(), rtol=1e-5, atol=1e-6)
    _, hidden = model.fuse(model.code_tokens[1:], model.view_vectors[1:])
    fused = tf.concat([tf.zeros([1, DIM]), tf.reduce_mean(hidden, axis=1)], axis=0)
    np.testing.assert_allclose(model.history_table(table).numpy(), fused.numpy(), atol=1e-5)
    history = tf.constant(batch["history"])
    expected, _ = model.encoder(tf.gather(fused, history), history > 0)
    np.testing.assert_allclose(model.user_vectors(history, table).numpy(), expected.numpy(),
                               atol=1e-5)
    assert not np.allclose(expected.numpy(), paper.user_vectors(history, table).numpy(),
                           atol=1e-3)


def test_item_id_variant_tells_identical_items_apart():
    """With `item_id_buckets` an item vector is its fused vector plus its id's row of the
    hashed table: twins (the same codes and views) start equal (the table is zeros) and part
    as the table trains; every weight gets a gradient; the variant needs the ids."""
    rng = np.random.default_rng(3)
    half = NUM_ITEMS // 2
    codes = rng.integers(0, K, (half, NUM_CODES))
    views = rng.standard_normal((half, VIEWS, DIM)).astype(np.float32)
    ids = [f"id-{i}" for i in range(NUM_ITEMS)]
    config = ModelConfig(dim=DIM, ffn_dim=32, max_history=5, dropout=0.0, item_id_buckets=97,
                         loss="sampled", num_negatives=20)
    model = CCFRecModel(config, np.concatenate([codes, codes]), np.concatenate([views, views]),
                        codebook_size=K, seed=0, item_ids=ids)
    table = model.item_vectors().numpy()
    np.testing.assert_allclose(table[1:half + 1], table[half + 1:], atol=1e-6)
    with tf.GradientTape() as tape:
        value = model.compute_loss(_batch(), training=True)
    grads = tape.gradient(value, model.trainable_variables)
    assert [v.name for v, g in zip(model.trainable_variables, grads) if g is None] == []
    model.item_id_embedding.embeddings.assign(tf.random.normal((97, DIM)))
    rows = np.concatenate([[0], hashed_id_rows(ids, 97)])
    items = tf.range(1, NUM_ITEMS + 1)
    fused = model.fuse(tf.gather(model.code_tokens, items), tf.gather(model.view_vectors, items))[0]
    expected = fused.numpy() + model.item_id_embedding.embeddings.numpy()[rows[1:] - 1] * DIM ** 0.5
    table = model.item_vectors().numpy()
    np.testing.assert_allclose(table[1:], expected, atol=1e-5)
    np.testing.assert_array_equal(table[0], np.zeros(DIM))
    np.testing.assert_array_equal(model.id_vectors(tf.constant([0])).numpy(), np.zeros((1, DIM)))
    differ = rows[1:half + 1] != rows[half + 1:]
    assert differ.any()
    assert not np.allclose(table[1:half + 1][differ], table[half + 1:][differ])
    for item_ids in (None, ids[:-1]):
        with pytest.raises(ValueError, match="item_id_buckets needs"):
            CCFRecModel(config, np.concatenate([codes, codes]), np.concatenate([views, views]),
                        codebook_size=K, item_ids=item_ids)
    with pytest.raises(ValueError, match="item_id_buckets must be"):
        ModelConfig(item_id_buckets=-1)


def test_without_text_the_views_do_not_matter():
    model = _model(use_text=False)
    before = model.item_vectors().numpy()
    model.view_vectors = model.view_vectors * 3.0
    np.testing.assert_allclose(model.item_vectors().numpy(), before, atol=1e-5)


def test_msa_is_off_until_the_optimizer_has_taken_its_warmup_steps():
    model = _model(mcm_weight=0.0, msa_warmup_steps=3)
    model.compile(optimizer=tf.keras.optimizers.SGD(0.0))  # steps count, weights stay
    batch = _batch()
    table = model.item_vectors()
    rec = float(model.full_softmax_loss(model.user_vectors(batch["history"], table), table,
                                        batch["target"]))
    losses = []
    record = tf.keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda step, logs: losses.append(float(logs["loss"])))
    model.fit(tf.data.Dataset.from_tensors(batch).repeat(5), callbacks=[record], verbose=0)
    assert int(model.optimizer.iterations) == 5
    np.testing.assert_allclose(losses[:3], rec, rtol=1e-5)
    assert min(losses[3:]) > rec + 0.1  # lambda_MSA * L_MSA from step 3 on
    with pytest.raises(ValueError, match="msa_warmup_steps must be >= 0"):
        ModelConfig(msa_warmup_steps=-1)


def test_fit_lowers_the_loss():
    model = _model()
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
    rng = np.random.default_rng(1)
    history = rng.integers(1, NUM_ITEMS + 1, (64, 5)).astype(np.int32)
    target = ((history[:, -1] % NUM_ITEMS) + 1).astype(np.int32)  # a learnable next item
    data = tf.data.Dataset.from_tensor_slices({"history": history, "target": target}).batch(32)
    losses = model.fit(data, epochs=15, verbose=0).history["loss"]
    assert losses[-1] < 0.6 * losses[0]


def test_rank_metrics_against_numpy():
    rng = np.random.default_rng(2)
    scores = rng.standard_normal((40, 30)).astype(np.float32)
    targets = rng.integers(1, 31, 40)
    ranks = ranking.rank_of_target(tf.constant(scores), tf.constant(targets)).numpy()
    expected = [int((row > row[t - 1]).sum()) for row, t in zip(scores, targets)]
    assert ranks.tolist() == expected
    metrics = evaluation.metrics_from_ranks(ranks)
    assert metrics["recall@10"] == pytest.approx(np.mean(np.array(expected) < 10))
    ndcg = np.mean([1 / np.log2(r + 2) if r < 5 else 0.0 for r in expected])
    assert metrics["ndcg@5"] == pytest.approx(ndcg)


def test_evaluate_equals_ranking_the_model_scores():
    model = _model()
    rng = np.random.default_rng(3)
    history = rng.integers(0, NUM_ITEMS + 1, (20, 5)).astype(np.int32)
    target = rng.integers(1, NUM_ITEMS + 1, 20).astype(np.int32)
    data = tf.data.Dataset.from_tensor_slices({"history": history, "target": target}).batch(7)
    metrics = evaluation.evaluate(model, data)
    scores = model({"history": history}).numpy()
    ranks = [int((row > row[t - 1]).sum()) for row, t in zip(scores, target)]
    assert metrics["recall@10"] == pytest.approx(np.mean(np.array(ranks) < 10))
    assert metrics["examples"] == 20


def test_evaluation_bounds_the_scores_it_holds(monkeypatch):
    """Batches re-cut to 3 users (a budget of 3 catalogs' scores), the last one padded, give
    the same ranks and sampled ranks as whole batches."""
    model = _model()
    rng = np.random.default_rng(4)
    history = rng.integers(0, NUM_ITEMS + 1, (20, 5)).astype(np.int32)
    target = rng.integers(1, NUM_ITEMS + 1, 20).astype(np.int32)
    data = tf.data.Dataset.from_tensor_slices({"history": history, "target": target}).batch(8)
    whole = evaluation.evaluate(model, data, sampled_negatives=10, with_ranks=True)
    seen = []
    ranking_function = evaluation.ranking_function

    def spying(*args, **kwargs):
        scores_of = ranking_function(*args, **kwargs)

        def spy(history, targets):
            seen.append(int(tf.shape(history)[0]))
            return scores_of(history, targets)
        return spy

    monkeypatch.setattr(evaluation, "SCORES_BUDGET", 3 * NUM_ITEMS + 1)
    monkeypatch.setattr(evaluation, "ranking_function", spying)
    cut = evaluation.evaluate(model, data, sampled_negatives=10, with_ranks=True)
    assert seen == [3] * 7   # the last 2 examples padded to the batch's 3 rows
    np.testing.assert_array_equal(cut.pop("ranks"), whole.pop("ranks"))
    assert cut == whole


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_evaluation_ranks_are_the_model_scores_ranks_with_ties(similarity):
    """`evaluate`'s ranks, with and without sampled negatives (scores kept or not), equal
    `rank_of_target` of the model's own scores of the same batches and NumPy's, here with every
    item tied with a twin (same codes and text): ties count against the target."""
    rng = np.random.default_rng(7)
    half = NUM_ITEMS // 2
    codes = rng.integers(0, K, (half, NUM_CODES))
    views = rng.standard_normal((half, VIEWS, DIM)).astype(np.float32)
    config = ModelConfig(dim=DIM, ffn_dim=32, max_history=5, dropout=0.0, similarity=similarity)
    model = CCFRecModel(config, np.concatenate([codes, codes]), np.concatenate([views, views]),
                        codebook_size=K, seed=0)
    history = rng.integers(0, NUM_ITEMS + 1, (40, 5)).astype(np.int32)
    target = rng.integers(1, NUM_ITEMS + 1, 40).astype(np.int32)
    data = tf.data.Dataset.from_tensor_slices({"history": history, "target": target}).batch(16)
    fused = evaluation.evaluate(model, data, with_ranks=True)["ranks"]
    kept = evaluation.evaluate(model, data, sampled_negatives=5, with_ranks=True)["ranks"]
    library, numpy_ranks, ties = [], [], 0
    for batch in data:   # the same batches: a product's rounding may depend on its shape
        scores = model(batch)
        library.append(ranking.rank_of_target(scores, batch["target"]).numpy())
        numpy_ranks += [_reference_rank(row, t) for row, t in zip(scores.numpy(),
                                                                 batch["target"].numpy())]
        ties += int((scores.numpy()[:, :half] == scores.numpy()[:, half:]).sum())
    library = np.concatenate(library)
    np.testing.assert_array_equal(fused, library)
    np.testing.assert_array_equal(kept, library)
    np.testing.assert_array_equal(library, numpy_ranks)
    assert ties > 0


def _reference_rank(row, target, history=(), negatives=None):
    """NumPy: 0-based rank of `target` (ties against it), history items other than the target
    removed, among `negatives` only when given."""
    row = row.copy()
    for item in history:
        if item and item != target:
            row[item - 1] = -np.inf
    others = row if negatives is None else row[np.asarray(negatives) - 1]
    return int((others >= row[target - 1]).sum()) - (1 if negatives is None else 0)


def test_protocols_against_numpy():
    """Full ranking with and without history, the 100-negative protocol, head/tail slices."""
    model = _model()
    rng = np.random.default_rng(5)
    history = rng.integers(0, NUM_ITEMS + 1, (30, 5)).astype(np.int32)
    history[:, -1] = rng.integers(1, NUM_ITEMS + 1, 30)
    target = rng.integers(1, NUM_ITEMS + 1, 30).astype(np.int32)
    history[0, 2] = target[0]  # a repeat: the target stays rankable
    data = tf.data.Dataset.from_tensor_slices({"history": history, "target": target}).batch(8)
    counts = rng.integers(0, 100, NUM_ITEMS + 1)
    head = ranking.head_items(counts)
    assert head.sum() == 10 and not head[0]
    assert counts[1:][head[1:]].min() >= counts[1:][~head[1:]].max()
    scores = model({"history": history}).numpy()
    for exclude in (False, True):
        metrics = evaluation.evaluate(model, data, exclude_history=exclude, sampled_negatives=20,
                                      head=head, seed=3)
        negatives = ranking.draw_negatives(history, target, NUM_ITEMS, 20, seed=3).numpy()
        assert not (negatives == target[:, None]).any()
        assert negatives.min() >= 1 and negatives.max() <= NUM_ITEMS
        full = np.array([_reference_rank(scores[i], target[i], history[i] if exclude else ())
                         for i in range(30)])
        sampled = np.array([_reference_rank(scores[i], target[i],
                                            history[i] if exclude else (), negatives[i])
                            for i in range(30)])
        assert metrics["recall@10"] == pytest.approx(np.mean(full < 10))
        assert metrics["ndcg@5"] == pytest.approx(np.mean(np.where(
            full < 5, 1 / np.log2(full + 2), 0)))
        assert metrics["sampled_hr@10"] == pytest.approx(np.mean(sampled < 10))
        assert metrics["sampled_ndcg@10"] == pytest.approx(np.mean(np.where(
            sampled < 10, 1 / np.log2(sampled + 2), 0)))
        in_head = head[target]
        assert metrics["head"]["examples"] == in_head.sum()
        assert metrics["tail"]["recall@10"] == pytest.approx(np.mean(full[~in_head] < 10))
        assert metrics["head"]["sampled_hr@10"] == pytest.approx(np.mean(sampled[in_head] < 10))
    assert sampled.max() <= 20


def test_negatives_depend_on_the_example_only():
    """Same example, same draws, whatever the batch; another seed or target, other draws;
    uniform over the items other than the target."""
    rng = np.random.default_rng(1)
    history = rng.integers(0, NUM_ITEMS + 1, (6, 5)).astype(np.int32)
    target = rng.integers(1, NUM_ITEMS + 1, 6).astype(np.int32)
    whole = ranking.draw_negatives(history, target, NUM_ITEMS, 50, seed=7).numpy()
    alone = ranking.draw_negatives(history[3:4], target[3:4], NUM_ITEMS, 50, seed=7).numpy()
    np.testing.assert_array_equal(whole[3:4], alone)
    assert (whole != ranking.draw_negatives(history, target, NUM_ITEMS, 50,
                                               seed=8).numpy()).any()
    many = ranking.draw_negatives(np.zeros((1, 5), np.int32), np.array([4]), 10, 20_000).numpy()
    counts = np.bincount(many.ravel(), minlength=11)
    assert counts[0] == 0 and counts[4] == 0
    others = counts[[i for i in range(1, 11) if i != 4]]
    assert np.abs(others / 20_000 - 1 / 9).max() < 0.01


def test_training_interactions_count_every_training_item(tmp_path, office_dir):
    from tf_ccfrec.data import readers, splits

    prepare.prepare("lcrec", office_dir, str(tmp_path / "prepared"))
    data = readers.read("lcrec", office_dir)
    item_ids = list(data.items)
    counts = ranking.training_interactions(str(tmp_path / "prepared"), item_ids)
    expected = np.zeros(len(item_ids) + 1, np.int64)
    index = {item: i + 1 for i, item in enumerate(item_ids)}
    for user in data.sequences:
        for position, role in enumerate(splits.roles(data, user)):
            if role == "train":
                expected[index[data.sequences[user][position]]] += 1
    np.testing.assert_array_equal(counts, expected)
    # Batches that end mid-user count the same; an item outside the order is named.
    np.testing.assert_array_equal(
        ranking.training_interactions(str(tmp_path / "prepared"), item_ids, batch_size=1001),
        expected)
    with pytest.raises(ValueError, match=r"item '.+' is not in the item order"):
        ranking.training_interactions(str(tmp_path / "prepared"), item_ids[1:])


def test_input_pipeline_on_office(tmp_path, office_dir):
    from tf_ccfrec.data import readers, splits

    prepare.prepare("lcrec", office_dir, str(tmp_path / "prepared"))
    data = readers.read("lcrec", office_dir)
    item_ids = list(data.items)
    batch = next(iter(inputs.make_dataset(str(tmp_path / "prepared"), "test", item_ids,
                                          batch_size=8, max_history=20)))
    expected = splits.make_examples(data)["test"][:8]
    index = {item: i + 1 for i, item in enumerate(item_ids)}
    for row, example in zip(batch["history"].numpy(), expected):
        real = [index[i] for i in example.history]
        assert row.tolist() == [0] * (20 - len(real)) + real
    assert batch["target"].numpy().tolist() == [index[e.target] for e in expected]


def test_sasrec_baseline_trains_with_the_same_loss():
    from tf_ccfrec.models.sasrec import SASRecModel

    config = ModelConfig(dim=DIM, ffn_dim=32, max_history=5, dropout=0.0)
    model = SASRecModel(config, NUM_ITEMS)
    assert model(_batch()).shape == (3, NUM_ITEMS)
    with tf.GradientTape() as tape:
        value = model.compute_loss(_batch(), training=True)
    grads = tape.gradient(value, model.trainable_variables)
    assert all(g is not None for g in grads)
    assert np.asarray(model.item_vectors()[0]).tolist() == [0.0] * DIM


@pytest.mark.parametrize("protocol", ["unseen", "uniform"])
def test_sampled_protocol_draws_uniformly_from_the_allowed_items(protocol):
    """"unseen": never a history item or the target (repeats in the history counted once), each
    other item equally often; "uniform": only the target left out."""
    history = np.array([[0, 2, 7, 2, 9], [0, 0, 0, 0, 1], [3, 5, 6, 8, 10]], np.int32)
    target = np.array([4, 10, 1], np.int32)
    draws = ranking.draw_negatives(history, target, 12, 30_000, seed=2,
                                      protocol=protocol).numpy()
    for row in range(3):
        excluded = {int(target[row])} | (set(history[row].tolist()) - {0}
                                         if protocol == "unseen" else set())
        allowed = [i for i in range(1, 13) if i not in excluded]
        counts = np.bincount(draws[row], minlength=13)
        assert counts[0] == 0 and all(counts[i] == 0 for i in excluded)
        assert np.abs(counts[allowed] / 30_000 - 1 / len(allowed)).max() < 0.01
    alone = ranking.draw_negatives(history[1:2], target[1:2], 12, 30_000, seed=2,
                                      protocol=protocol).numpy()
    np.testing.assert_array_equal(draws[1:2], alone)


def test_sampled_protocol_is_checked():
    with pytest.raises(ValueError, match="sampled protocol"):
        ranking.draw_negatives(np.zeros((1, 2), np.int32), np.array([1]), 5, 3,
                                  protocol="popular")
