"""SavedModel export: the signatures answer what the Keras model computes, with raw item ids;
unknown ids, empty histories and exclusion behave as documented; the ScaNN index is checked."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tf_ccfrec.storage import OutputExists
from tf_ccfrec.export import saved_model, scann_index
from tf_ccfrec.models.ccfrec import CCFRecModel
from tf_ccfrec.models.config import ModelConfig
from tf_ccfrec import ranking

NUM_ITEMS, DIM = 60, 16
ITEM_IDS = [f"item{i:03d}" for i in range(NUM_ITEMS)]


def _model(history_vector="paper"):
    """A small built CCFRec model and the item popularity it is exported with."""
    tf.keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    config = ModelConfig(dim=DIM, ffn_dim=32, max_history=5, dropout=0.0,
                          history_vector=history_vector)
    model = CCFRecModel(config, rng.integers(0, 16, (NUM_ITEMS, 4)),
                        rng.standard_normal((NUM_ITEMS, 2, DIM)).astype(np.float32),
                        codebook_size=16, seed=0)
    model.compute_loss({"history": tf.ones([1, 5], tf.int32), "target": tf.ones([1], tf.int32)})
    popularity = np.concatenate([[0], rng.integers(0, 50, NUM_ITEMS)])
    return model, popularity


def _export(parent, history_vector="paper"):
    model, popularity = _model(history_vector)
    directory = str(parent / "ccfrec" / "1")
    saved_model.export(model, ITEM_IDS, popularity, directory, top_k=10)
    return model, popularity, directory, tf.saved_model.load(directory)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return _export(tmp_path_factory.mktemp("serving"))


def _ids(indices):
    return [ITEM_IDS[i - 1] if i else "" for i in indices]


def test_release_history_vectors_are_exported_too(tmp_path):
    """With history_vector="release" the encoder reads other vectors than the candidates'; the
    export serves what the Keras model scores."""
    test_exact_top_k_equals_the_keras_model(_export(tmp_path, "release"))


def test_exact_top_k_equals_the_keras_model(exported):
    model, _, _, loaded = exported
    history = np.array([[0, 0, 3, 4, 5], [1, 2, 3, 4, 5], [0, 0, 0, 0, 7]])
    expected = model({"history": tf.constant(history)}).numpy()
    out = loaded.signatures["serving_default"](
        history=tf.constant([[ITEM_IDS[2], ITEM_IDS[3], ITEM_IDS[4], "", ""],
                             _ids([1, 2, 3, 4, 5]), [ITEM_IDS[6], "", "", "", ""]]))
    for row in range(3):
        top = np.argsort(-expected[row], kind="stable")[:10]
        assert [x.decode() for x in out["item_ids"][row].numpy()] == [ITEM_IDS[i] for i in top]
        np.testing.assert_allclose(out["scores"][row].numpy(), expected[row][top], rtol=1e-4,
                                   atol=1e-4)
    assert out["known_items"].numpy().tolist() == [3, 5, 1]
    assert not out["fallback"].numpy().any()


def test_unknown_ids_are_ignored_and_an_empty_history_falls_back_to_popularity(exported):
    _, popularity, _, loaded = exported
    serve = loaded.signatures["serving_default"]
    with_unknown = serve(history=tf.constant([[ITEM_IDS[2], "nope", ITEM_IDS[4]]]))
    clean = serve(history=tf.constant([[ITEM_IDS[2], ITEM_IDS[4], ""]]))
    assert with_unknown["item_ids"].numpy().tolist() == clean["item_ids"].numpy().tolist()
    assert with_unknown["known_items"].numpy().tolist() == [2]
    empty = serve(history=tf.constant([["", "unknown"]]))
    assert empty["fallback"].numpy().tolist() == [True]
    most_popular = np.argsort(-popularity[1:], kind="stable")[:10]
    got = [x.decode() for x in empty["item_ids"][0].numpy()]
    assert set(got[:5]) <= {ITEM_IDS[i] for i in most_popular}


def test_excluding_history_drops_the_seen_items(exported):
    model, _, _, loaded = exported
    history = [ITEM_IDS[i] for i in (10, 11, 12)]
    scores = model({"history": tf.constant([[0, 0, 11, 12, 13]])}).numpy()[0]
    scores[[10, 11, 12]] = -np.inf
    out = loaded.signatures["serving_excluding_history"](history=tf.constant([history]))
    got = [x.decode() for x in out["item_ids"][0].numpy()]
    assert got == [ITEM_IDS[i] for i in np.argsort(-scores, kind="stable")[:10]]
    assert not set(got) & set(history)


def test_tf_example_signature_gives_the_evaluation_rank(exported):
    model, _, _, loaded = exported
    history = np.array([[0, 0, 3, 4, 5], [0, 1, 2, 3, 9]])
    targets = np.array([8, 30])
    expected = ranking.rank_of_target(model({"history": tf.constant(history)}),
                                         tf.constant(targets)).numpy()
    examples = []
    for row, target in zip(history, targets):
        feature = {"history": tf.train.Feature(bytes_list=tf.train.BytesList(
                       value=[x.encode() for x in _ids(row) if x])),
                   "target": tf.train.Feature(bytes_list=tf.train.BytesList(
                       value=[ITEM_IDS[target - 1].encode()]))}
        examples.append(tf.train.Example(features=tf.train.Features(feature=feature))
                        .SerializeToString())
    unknown = tf.train.Example(features=tf.train.Features(feature={
        "target": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"x"]))}))
    out = loaded.signatures["serve_tf_examples"](
        examples=tf.constant(examples + [unknown.SerializeToString()]))
    assert out["target_rank"].numpy().tolist() == expected.tolist() + [-1]


def test_embeddings_and_the_scann_index(exported):
    model, _, directory, loaded = exported
    items = loaded.signatures["embed_items"](item_ids=tf.constant([ITEM_IDS[0], "zzz"]))
    table = tf.math.l2_normalize(model.item_vectors(), axis=-1).numpy()
    np.testing.assert_allclose(items["vectors"][0].numpy(), table[1], atol=1e-5)
    assert items["known"].numpy().tolist() == [True, False]
    query = loaded.signatures["embed_query"](history=tf.constant([[ITEM_IDS[2], ITEM_IDS[3]]]))
    searcher, ids = scann_index.load(os.path.join(directory, scann_index.DIRECTORY))
    assert ids == ITEM_IDS
    neighbors, _ = searcher.search_batched(query["query"].numpy(), final_num_neighbors=10)
    exact = loaded.signatures["serving_default"](
        history=tf.constant([[ITEM_IDS[2], ITEM_IDS[3]]]))
    assert [ids[i] for i in neighbors[0]] == [x.decode() for x in exact["item_ids"][0].numpy()]
    with open(os.path.join(directory, saved_model.EXPORT_INFO)) as f:
        assert json.load(f)["items"] == NUM_ITEMS


def test_warmup_requests_are_tf_serving_prediction_logs(exported):
    """assets.extra/tf_serving_warmup_requests: PredictionLog records (as TF Serving reads
    them) for every signature, each of which the export answers."""
    from tensorflow_serving.apis import prediction_log_pb2

    from tf_ccfrec.export import warmup

    _, _, directory, loaded = exported
    path = os.path.join(directory, warmup.PATH)
    names = []
    for record in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        assert log.WhichOneof("log_type") == "predict_log"
        request = log.predict_log.request
        names.append(request.model_spec.signature_name)
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        loaded.signatures[request.model_spec.signature_name](
            **{k: tf.constant(v, tf.string) for k, v in inputs.items()})
    assert set(names) == set(loaded.signatures)
    assert len(names) == 2 * len(set(names))
    assert [name for name, _ in warmup.read(directory, loaded.signatures)] == names


def test_a_corrupt_index_is_refused_by_name(exported, tmp_path):
    import shutil

    _, _, directory, _ = exported
    copy = str(tmp_path / "scann")
    shutil.copytree(os.path.join(directory, scann_index.DIRECTORY), copy)
    with open(os.path.join(copy, scann_index.ITEM_IDS), "a") as f:
        f.write("extra\n")
    with pytest.raises(scann_index.ScannIndexError, match="item_ids.txt"):
        scann_index.load(copy)


def test_an_existing_version_is_not_overwritten(exported):
    model, popularity, directory, _ = exported
    before = sorted(os.listdir(directory))
    with pytest.raises(OutputExists):
        saved_model.export(model, ITEM_IDS, popularity, directory)
    assert sorted(os.listdir(directory)) == before
    assert not [d for d in os.listdir(os.path.dirname(directory)) if "partial" in d]
