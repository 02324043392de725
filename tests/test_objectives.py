"""Training objectives beside the paper's: every position of a sequence predicting its next item,
each target against uniform negatives of its own, dot-product scores (the published SASRec with
sampled softmax, `--preset sasrec-ss`), checked against NumPy."""

import numpy as np
import pytest
import tensorflow as tf

from tf_ccfrec.data import prepare, readers, splits, tfrecords
from tf_ccfrec.models.config import ModelConfig
from tf_ccfrec.models.sasrec import SASRecModel
from tf_ccfrec.training import inputs, presets

NUM_ITEMS, DIM = 40, 8


@pytest.fixture(autouse=True)
def _seed():
    tf.keras.utils.set_random_seed(0)


def _sasrec(**overrides):
    config = ModelConfig(**{"dim": DIM, "ffn_dim": 16, "max_history": 4, "dropout": 0.0,
                             "sequence_layers": 1, "num_heads": 1, **overrides})
    return SASRecModel(config, NUM_ITEMS)


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _sequence_batch():
    # Right-aligned, 0 padding; target[b, j] is the item after history[b, j].
    return {"history": tf.constant([[0, 0, 3, 4], [1, 2, 3, 4], [0, 0, 0, 7]]),
            "target": tf.constant([[0, 0, 4, 9], [2, 3, 4, 5], [0, 0, 0, 40]])}


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_uniform_loss_against_numpy(similarity):
    """Each target against its own negatives: softmax over [target, negatives], a negative
    equal to the target left out."""
    model = _sasrec(loss="uniform", num_negatives=3, similarity=similarity)
    rng = np.random.default_rng(1)
    users = rng.standard_normal((2, DIM)).astype(np.float32)
    targets = np.array([5, 9], np.int32)
    negatives = np.array([[1, 5, 7], [2, 3, 4]], np.int32)   # row 0 holds its own target
    target_vectors = rng.standard_normal((2, DIM)).astype(np.float32)
    negative_vectors = rng.standard_normal((2, 3, DIM)).astype(np.float32)
    loss = float(model.uniform_softmax_loss(users, targets, target_vectors, negatives,
                                            negative_vectors))
    unit = ((lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)) if similarity == "cosine"
            else (lambda x: x))
    scale = 0.07 if similarity == "cosine" else 1.0
    expected = []
    for row in range(2):
        logits = np.concatenate([[unit(users[row]) @ unit(target_vectors[row])],
                                 unit(negative_vectors[row]) @ unit(users[row])]) / scale
        logits[1:][negatives[row] == targets[row]] = -np.inf
        expected.append(-_log_softmax(logits)[0])
    assert loss == pytest.approx(np.mean(expected), rel=1e-4)


def test_dot_scores_are_inner_products():
    model = _sasrec(similarity="dot")
    batch = _sequence_batch()
    table = model.item_vectors()
    users = model.user_vectors(batch["history"], table)
    np.testing.assert_allclose(model.scores(users, table).numpy(),
                               users.numpy() @ table.numpy()[1:].T, rtol=1e-5, atol=1e-6)


def test_every_position_loss_is_the_mean_over_real_positions():
    """Objective all_positions with the full softmax: the mean, over the cells whose target is
    not padding, of the cross-entropy of the encoder's output at that cell."""
    model = _sasrec(objective="all_positions", loss="full")
    batch = _sequence_batch()
    loss = float(model.compute_loss(batch, training=False))
    table = model.item_vectors()
    history = batch["history"]
    _, every = model.encoder(tf.gather(table, history), history > 0, training=False)
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    logits = np.einsum("bld,nd->bln", unit(every.numpy()), unit(table.numpy()[1:])) / 0.07
    targets = batch["target"].numpy()
    cells = np.argwhere(targets > 0)
    expected = [-_log_softmax(logits[b, j])[targets[b, j] - 1] for b, j in cells]
    assert len(expected) == 7
    assert loss == pytest.approx(np.mean(expected), rel=1e-4)


def test_every_position_uniform_loss_trains_every_weight():
    model = _sasrec(objective="all_positions", loss="uniform", num_negatives=5,
                    similarity="dot")
    with tf.GradientTape() as tape:
        value = model.compute_loss(_sequence_batch(), training=True)
    grads = tape.gradient(value, model.trainable_variables)
    assert np.isfinite(float(value)) and float(value) > 0
    assert all(g is not None for g in grads)


def test_sequence_arrays_right_align_inputs_and_next_items():
    history, target = inputs.sequence_arrays([[1, 2, 3], [4, 5, 6, 7, 8, 9]], 4)
    assert history.tolist() == [[0, 0, 1, 2], [5, 6, 7, 8]]
    assert target.tolist() == [[0, 0, 2, 3], [6, 7, 8, 9]]


def test_training_sequences_rebuild_each_users_training_part(tmp_path, office_dir):
    """From the prepared examples, whatever max_history they were prepared with: each user's
    sequence without its validation and test targets."""
    prepare.prepare("lcrec", office_dir, str(tmp_path / "prepared"), max_history=3)
    data = readers.read("lcrec", office_dir)
    rebuilt = inputs.training_sequences(
        tfrecords.read_examples(str(tmp_path / "prepared"), "train"))
    # Each user's training part: the items whose leave-one-out role is "train".
    training = {user: [item for item, role in zip(seq, splits.roles(data, user))
                       if role == "train"] for user, seq in data.sequences.items()}
    expected = {user: seq for user, seq in training.items() if len(seq) >= 2}
    assert rebuilt == expected
    assert max(len(s) for s in rebuilt.values()) > 4   # longer than the examples' histories
    item_ids = list(data.items)
    prepared = inputs.PreparedData(str(tmp_path / "prepared"), item_ids, max_history=50)
    batch = next(iter(prepared.sequence_dataset(batch_size=len(rebuilt))))
    assert prepared.train_sequences() == len(rebuilt)
    index = {item: i + 1 for i, item in enumerate(item_ids)}
    first = [index[i] for i in next(iter(rebuilt.values()))]
    assert batch["history"].numpy()[0][50 - len(first) + 1:].tolist() == first[:-1]
    assert batch["target"].numpy()[0][50 - len(first) + 1:].tolist() == first[1:]


def test_export_scores_as_the_model_under_dot_similarity():
    from tf_ccfrec.export.serving_module import RetrievalModule

    model = _sasrec(similarity="dot")
    table = model.item_vectors().numpy()
    ids = [f"i{n}" for n in range(NUM_ITEMS)]
    module = RetrievalModule(model.encoder, table, ids, np.ones(NUM_ITEMS + 1), 0.07,
                             4, top_k=5, similarity="dot")
    history = _sequence_batch()["history"]
    scores, _ = module.all_scores(history)
    users = model.user_vectors(history, tf.constant(table))
    np.testing.assert_allclose(scores.numpy(), model.scores(users, table).numpy(), rtol=1e-5,
                               atol=1e-5)
    assert module.temperature == 1.0


def test_sasrec_ss_preset_is_the_published_setting():
    model, training = presets.configs("sasrec-ss")
    assert (model.objective, model.loss, model.num_negatives, model.similarity) == \
        ("all_positions", "uniform", 256, "dot")
    assert (model.dim, model.sequence_layers, model.num_heads, model.dropout,
            model.max_history) == (64, 1, 1, 0.2, 50)
    assert (training.batch_size, training.learning_rate, training.warmup_steps,
            training.weight_decay, training.max_epochs, training.patience) == \
        (128, 1e-3, 0, 0.0, 200, 50)


def test_objective_errors_name_the_field():
    with pytest.raises(ValueError, match="objective"):
        ModelConfig(objective="every")
    with pytest.raises(ValueError, match="similarity"):
        ModelConfig(similarity="l2")
    with pytest.raises(ValueError, match="history_negative_weight"):
        ModelConfig(objective="all_positions", history_negative_weight=1.0)
