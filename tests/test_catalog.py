"""`ccfrec catalog add`: new items served without retraining, on a trained CCFRec run whose codes
come from the real sentence encoder, against a real server on loopback."""

import json
import os
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from tests import data_files, serving_server
from tests.conftest import REPO
from tf_ccfrec.data.errors import DataError
from tf_ccfrec.models.config import ModelConfig

VIEWS = ["title", "brand"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A CCFRec run on 60 Office users (codes of MiniLM embeddings of title and brand), its
    export as version 1, and `ccfrec serve` over it."""
    from tf_ccfrec.codes import artifact, build
    from tf_ccfrec.codes.config import CodesConfig
    from tf_ccfrec.data import tfrecords
    from tf_ccfrec.export import saved_model
    from tf_ccfrec.training import train

    root = tmp_path_factory.mktemp("catalog")
    prepared, _ = data_files.office_slice(root / "slice", 60, 16, 16)
    item_ids, items = tfrecords.read_catalog(prepared, VIEWS)
    cache = str(root / "cache")
    codes = build.codes_from_texts(item_ids, items, VIEWS,
                                   CodesConfig(pca_dim=16, codes_per_view=2, codebook_size=16),
                                   cache_dir=cache)
    artifact.save(str(root / "codes"), codes)
    config = ModelConfig(dim=16, ffn_dim=32, fusion_layers=1, sequence_layers=1, dropout=0.0)
    train.train(prepared, str(root / "codes"), str(root / "run"), "ccfrec", config,
                train.TrainConfig(batch_size=64, max_epochs=1, warmup_steps=2), verbose=0)
    base = root / "serving"
    saved_model.export_run(str(root / "run"), str(base / "ccfrec" / "1"), top_k=5)
    server = serving_server.start(["--model-base", str(base), "--model-name", "ccfrec",
                                   "--poll-seconds", "0.3"], str(root))
    yield {"root": root, "base": base, "items": items, "ids": item_ids, "cache": cache,
           "server": server, "prepared": prepared}
    server.stop()


def _add(served, lines, name="items.jsonl"):
    path = served["root"] / name
    path.write_bytes(b"\n".join(line if isinstance(line, bytes) else json.dumps(line).encode()
                                for line in lines) + b"\n")
    return subprocess.run(
        [os.path.join(REPO, "bin", "ccfrec"), "catalog", "add", "--model-base",
         str(served["base"]), "--model-name", "ccfrec", "--items", str(path),
         "--embedding-cache", served["cache"]], capture_output=True, text=True, timeout=600)


def _vectors(server, ids):
    status, answer = server.call("/v1/models/ccfrec:predict",
                                 {"signature_name": "embed_items", "instances": ids})
    assert status == 200, answer
    return np.array([r["vectors"] for r in answer["predictions"]]), \
        [r["known"] for r in answer["predictions"]]


def test_new_items_are_served_right_after_catalog_add(served):
    server, existing = served["server"], served["ids"][7]
    copy = {"item_id": "new-copy", **served["items"][existing]}
    fresh = {"item_id": "new-fresh", "title": "Ergonomic violet stapler with soft grip",
             "brand": "Acme Office"}
    result = _add(served, [copy, fresh])
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["version"] == 2 and summary["added"] == 2 and summary["reencoded"] == 0
    assert summary["items"] == len(served["ids"]) + 2
    server.wait_for(lambda: sorted(v for v, s in server.versions().items()
                                   if s == "AVAILABLE") == [2], what="version 2")
    vectors, known = _vectors(server, ["new-copy", existing, "new-fresh"])
    assert known == [True, True, True]
    cosine = vectors[0] @ vectors[1] / np.linalg.norm(vectors[0]) / np.linalg.norm(vectors[1])
    assert cosine == pytest.approx(1.0, abs=1e-5)
    status, answer = server.predict([["new-fresh"]])
    assert status == 200 and answer["predictions"][0]["known_items"] == 1
    assert not answer["predictions"][0]["fallback"]
    status, answer = server.predict([[existing]], "serving_excluding_history", search="scann")
    assert status == 200
    # The existing items keep their vectors bit for bit.
    old = tf.saved_model.load(str(served["base"] / "ccfrec" / "1")).item_table.numpy()
    new = tf.saved_model.load(str(served["base"] / "ccfrec" / "2")).item_table.numpy()
    np.testing.assert_array_equal(new[:len(old)], old)
    assert new.shape[0] == old.shape[0] + 2


def test_bad_item_files_write_no_version(served):
    before = sorted(os.listdir(served["base"] / "ccfrec"))
    result = _add(served, [{"item_id": "x1", "title": "a"}, {"item_id": "x1", "title": "b"}],
                  "duplicates.jsonl")
    assert result.returncode == 2
    assert "duplicates.jsonl, line 2: item_id 'x1' appears twice" in result.stderr
    assert sorted(os.listdir(served["base"] / "ccfrec")) == before


@pytest.mark.parametrize("line,message", [
    (b'{"title": "a"}', "line 1: field 'item_id' is missing"),
    (b'{"item_id": "a", "title": "", "brand": " "}', "line 1: item 'a' has no text in any view"),
    (b'{"item_id": "a", "title": 3}', "line 1: field 'title' of item 'a' must be a string"),
    (b'{"item_id": "a", "title": "\xff\xfe"}', "line 1: not UTF-8"),
    (b'{"item_id": "a", "title": "t"', "line 1: not JSON"),
    (b'["a"]', "line 1: expected a JSON object"),
    (b'{"item_id": "a", "title": "t", "colour": "red"}',
     "line 1: fields ['colour'] are not views"),
])
def test_item_file_faults_name_the_line_and_field(tmp_path, line, message):
    from tf_ccfrec.data import item_files

    path = tmp_path / "items.jsonl"
    path.write_bytes(line + b"\n")
    with pytest.raises(DataError) as raised:
        item_files.read_items(str(path), VIEWS)
    assert f"{path}, {message}" in str(raised.value)


def test_item_files_of_the_dataset_formats(tmp_path):
    """LC-Rec item JSON and Amazon Reviews 2023 metadata as item files, texts cleaned."""
    from tf_ccfrec.data import item_files

    lcrec = tmp_path / "New.item.json"
    lcrec.write_text(json.dumps({"901": {"title": "Gel <b>pen</b> &amp; ink", "brand": "Pilot"},
                                 "902": {"title": "Desk lamp", "brand": None}}))
    assert item_files.read_item_file(str(lcrec), VIEWS, "lcrec") == {
        "901": {"title": "Gel pen & ink", "brand": "Pilot"},
        "902": {"title": "Desk lamp", "brand": ""}}
    meta = tmp_path / "meta_Office.jsonl"
    meta.write_text(json.dumps({"parent_asin": "B01", "title": "Stapler",
                                "details": {"Brand": "Swingline"}}) + "\n")
    assert item_files.read_item_file(str(meta), VIEWS, "amazon2023") == {
        "B01": {"title": "Stapler", "brand": "Swingline"}}
    lcrec.write_text(json.dumps({"903": {"title": "", "brand": ""}}))
    with pytest.raises(DataError, match="item '903' has no text in any view"):
        item_files.read_item_file(str(lcrec), VIEWS, "lcrec")


def test_catalog_add_keeps_an_export_s_own_id_lookup(served, tmp_path):
    """An export whose ids another lookup maps (the pipeline's tf.Transform graph; here one
    that lower-cases): the trained ids keep that lookup, the added ids follow the catalog, and
    a second add extends the first's list (indices stay put)."""
    from tf_ccfrec.export import catalog, saved_model
    from tf_ccfrec.models.run_directory import load_run

    base = tmp_path / "serving"
    model, run = load_run(str(served["root"] / "run"))
    saved_model.export(model, run["item_ids"], np.arange(len(run["item_ids"]) + 1),
                       str(base / "m" / "1"), top_k=5,
                       id_lookup=serving_server.NormalizingLookup(run["item_ids"]),
                       info={"model": "ccfrec", "run": str(served["root"] / "run")})
    one = saved_model.load(str(base / "m" / "1"))
    existing = served["ids"][3]
    for version, item in ((2, "New-Lamp"), (3, "New-Pen")):
        path = tmp_path / f"{item}.jsonl"
        path.write_text(json.dumps({"item_id": item, "title": f"{item} for the desk",
                                    "brand": "Acme"}) + "\n")
        summary = catalog.add_items(str(base), "m", str(path), cache_dir=served["cache"])
        assert summary["version"] == version and summary["added"] == 1
    three = saved_model.load(str(base / "m" / "3"))
    known = three.signatures["embed_items"](item_ids=tf.constant(
        [existing.upper(), "New-Lamp", "New-Pen", "new-pen", "nothing"]))["known"].numpy()
    assert known.tolist() == [True, True, True, False, False]
    n = len(served["ids"])
    assert three.lookup_ids(tf.constant(["New-Lamp", "New-Pen"])).numpy().tolist() == \
        [n + 1, n + 2]
    answer = three.signatures["serving_default"](history=tf.constant([["New-Pen", "New-Lamp"]]))
    assert answer["known_items"].numpy().tolist() == [2]
    np.testing.assert_array_equal(three.item_table.numpy()[:n + 1], one.item_table.numpy())
    assert catalog.added_texts(str(base / "m" / "3")) == {
        "New-Lamp": {"title": "New-Lamp for the desk", "brand": "Acme"},
        "New-Pen": {"title": "New-Pen for the desk", "brand": "Acme"}}


def test_catalog_add_with_the_item_id_variant(served, tmp_path):
    """A run with item-ID embeddings: an item whose text changes is fused again and keeps its
    id's vector; an added item is its fused vector alone (its id was never trained); every
    other row is copied bit for bit."""
    from tf_ccfrec.export import catalog, saved_model
    from tf_ccfrec.models.run_directory import load_run
    from tf_ccfrec.training import train

    config = ModelConfig(dim=16, ffn_dim=32, fusion_layers=1, sequence_layers=1, dropout=0.0,
                         item_id_buckets=32)
    train.train(served["prepared"], str(served["root"] / "codes"), str(tmp_path / "run"),
                "ccfrec", config, train.TrainConfig(batch_size=64, max_epochs=1, warmup_steps=2),
                verbose=0)
    saved_model.export_run(str(tmp_path / "run"), str(tmp_path / "1"), top_k=5)
    model, run = load_run(str(tmp_path / "run"))
    assert float(np.abs(model.item_id_embedding.embeddings.numpy()).max()) > 0   # trained
    changed = served["ids"][4]
    texts = {changed: {"title": "Blue gel pens, pack of twelve", "brand": "Acme"},
             "new-pen": {"title": "Blue gel pens, pack of twelve", "brand": "Acme"}}
    summary = catalog.extend_version(str(tmp_path / "1"), texts, str(tmp_path / "2"),
                                     cache_dir=served["cache"])
    assert summary["added"] == 1 and summary["reencoded"] == 1
    old = saved_model.load(str(tmp_path / "1")).item_table.numpy()
    new = saved_model.load(str(tmp_path / "2")).item_table.numpy()
    index = run["item_ids"].index(changed) + 1
    # The two texts are the same, so the two items fuse to the same vector; only the changed
    # (trained) item adds its id's row.
    fused_changed, fused_new = new[index], new[-1]
    id_term = model.id_vectors(tf.constant([index])).numpy()[0]
    assert float(np.abs(id_term).max()) > 0
    np.testing.assert_allclose(fused_changed - id_term, fused_new, atol=1e-5)
    assert not np.allclose(fused_changed, old[index])
    keep = np.ones(len(old), bool)
    keep[index] = False
    np.testing.assert_array_equal(new[:len(old)][keep], old[keep])
