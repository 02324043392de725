"""The pipeline on day two, with LocalDagRunner on real Office users and their text: interaction
and catalog spans (`{SPAN}` patterns), a second interaction span trained on a window of both
and warm-started from the first blessed model, then a catalog-only span that refreshes the
model without Transform or the Trainer, evaluated and pushed; and `ccfrec catalog add` on the
pushed model, whose ids the tf.Transform graph maps."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests import data_files
from tests.conftest import OFFICE, REPO

# Every model is blessed (the gate is test_pipeline.py's subject): 180-user validation splits
# hold a handful of hits, so a 5% relative threshold would decide on noise.
DAY_TWO = {"input_pattern": "interactions/span-{SPAN}/*",
           "catalog_pattern": "catalog/span-{SPAN}/*", "item_format": "lcrec",
           "window_spans": 2, "warm_start": True, "max_relative_drop": 1.0}
NEW_ITEMS = 12


def _run(root, embedding_cache, **changes):
    process = subprocess.run(
        [sys.executable, "-m", "tests.pipeline_runner", str(root), "0", "--embedding-cache",
         embedding_cache, "--day-two", json.dumps({**DAY_TWO, **changes})], cwd=REPO,
        capture_output=True, text=True, timeout=1500)
    assert process.returncode == 0, (process.stdout + process.stderr)[-6000:]
    return json.loads(process.stdout.strip().splitlines()[-1])


def _span(raw, span, office, users):
    items = sorted({i for u in users for i in office.sequences[u]}, key=int)
    data_files.lcrec(raw / "interactions" / f"span-{span}",
                     {u: [int(i) for i in office.sequences[u]] for u in users},
                     {i: {v: office.items[i][v] for v in office.views} for i in items},
                     name="Office")


def _catalog(raw, span, items):
    data_files.write(raw / "catalog" / f"span-{span}", "Office.item.json", json.dumps(items))


def _history(run_dir):
    return json.load(open(os.path.join(run_dir, "history.json")))


@pytest.fixture(scope="module")
def day_two(tmp_path_factory, embedding_cache):
    from tf_ccfrec.data import readers

    root = tmp_path_factory.mktemp("day_two")
    raw = root / "raw"
    office = readers.read("lcrec", OFFICE)
    users = [u for u in office.sequences if len(office.sequences[u]) >= 5][:360]
    first, second = users[:180], users[180:]
    catalog = {i: {v: office.items[i][v] for v in office.views}
               for i in sorted({i for u in users for i in office.sequences[u]}, key=int)}
    _span(raw, 1, office, first)
    _catalog(raw, 1, catalog)
    runs = [_run(root, embedding_cache)]
    _span(raw, 2, office, second)
    runs.append(_run(root, embedding_cache))
    existing = sorted(catalog, key=int)[:NEW_ITEMS]
    grown = dict(catalog)
    grown["copy-1"] = dict(catalog[existing[0]])  # an existing item's text under a new id
    for k, item in enumerate(existing[1:]):  # new texts recombined from the catalog's own
        other = catalog[existing[(k + 5) % len(existing)]]
        grown[f"new-{k}"] = {**catalog[item], "title": f"{catalog[item]['title']} "
                                                     f"{other['title']}"}
    _catalog(raw, 2, grown)
    runs.append(_run(root, embedding_cache, catalog_only=True))
    return {"root": root, "runs": runs, "catalog": catalog, "grown": grown,
            "copied": existing[0]}


def test_spans_are_read_and_recorded(day_two):
    from tfx_pipeline import outputs

    store = outputs._store(os.path.join(day_two["root"], "tfx", "metadata.sqlite"))
    spans = sorted(a.custom_properties["span"].int_value
                   for a in store.get_artifacts_by_type("Examples")
                   if "examples_train" in a.custom_properties)
    assert spans == [1, 2]
    # The second run's examples are the window of both spans, each split on its own.
    first, second = (run["dataset"] for run in day_two["runs"][:2])
    assert first["users"] == first["examples_valid"] == 180
    assert second["users"] == second["examples_valid"] == second["examples_test"] == 360
    assert second["interactions"] > first["interactions"]


def test_second_span_trains_on_the_window_from_the_first_model(day_two):
    root = day_two["root"]
    second = day_two["runs"][1]["executions"]
    assert second["ExampleGen"]["state"] == "COMPLETE"
    assert second["CatalogExampleGen"]["state"] == "CACHED"
    assert second["CCFRecTrainer"]["state"] == "COMPLETE"
    runs_dir = os.path.join(root, "tfx", "CCFRecTrainer", "model_run")
    runs = sorted(os.listdir(runs_dir), key=int)
    assert len(runs) == 2
    one, two = (os.path.join(runs_dir, r) for r in runs)
    config = json.load(open(os.path.join(two, "config.json")))
    assert config["initial_weights"] == one
    first_config = json.load(open(os.path.join(one, "config.json")))
    assert first_config["initial_weights"] is None
    # Warm-started, the second run reaches the first model's best validation NDCG@10 after
    # fewer steps than the first run (from scratch) took to get there.
    first, warm = _history(one), _history(two)
    target = max(h["valid_ndcg@10"] for h in first)

    def steps_to(history, value):
        done = 0
        for h in history:
            done += h["steps"]
            if h["valid_ndcg@10"] >= value:
                return done
        return float("inf")

    assert steps_to(warm, target) < steps_to(first, target), (first, warm)


def test_the_codes_keep_the_first_codebooks(day_two):
    from tf_ccfrec.codes import artifact

    codes_dir = os.path.join(day_two["root"], "tfx", "SemanticCodesGen", "codes")
    versions = sorted(os.listdir(codes_dir), key=int)
    fitted, recoded = (artifact.load(os.path.join(codes_dir, v)) for v in versions[:2])
    np.testing.assert_array_equal(fitted.arrays["codebooks"], recoded.arrays["codebooks"])
    np.testing.assert_array_equal(fitted.arrays["pca_components"],
                                  recoded.arrays["pca_components"])
    assert fitted.item_ids == recoded.item_ids
    np.testing.assert_array_equal(fitted.codes, recoded.codes)


def test_catalog_only_span_refreshes_without_the_trainer(day_two):
    from tf_ccfrec.export import saved_model

    third = day_two["runs"][2]
    nodes = third["executions"]
    assert "CCFRecTrainer" not in nodes and "Transform" not in nodes
    for node in ("CatalogExampleGen", "SemanticCodesGen", "CatalogRefresh", "Evaluator",
                 "TestEvaluator", "Pusher"):
        assert nodes[node]["state"] == "COMPLETE", (node, nodes)
    pushed = [run["pushed_model"] for run in day_two["runs"]]
    assert all(pushed) and len(set(pushed)) == 3
    before, after = saved_model.load(pushed[1]), saved_model.load(pushed[2])
    n = before.item_table.shape[0]
    assert after.item_table.shape[0] == n + NEW_ITEMS
    np.testing.assert_array_equal(after.item_table.numpy()[:n], before.item_table.numpy())
    vectors = after.signatures["embed_items"](item_ids=tf.constant(
        ["copy-1", day_two["copied"], "new-3"]))
    assert vectors["known"].numpy().all()
    v = vectors["vectors"].numpy()
    assert float(v[0] @ v[1]) == pytest.approx(1.0, abs=1e-5)
    answer = after.signatures["serving_default"](history=tf.constant([["new-3", "copy-1"]]))
    assert answer["known_items"].numpy().tolist() == [2]
    report = third["report"]
    assert report["blessed"] is True


def test_catalog_add_on_the_pushed_model(day_two, tmp_path):
    """`ccfrec catalog add` on the model the pipeline pushed: the tf.Transform graph keeps
    mapping the trained ids, the new one follows."""
    serving = os.path.join(day_two["root"], "serving")
    items = tmp_path / "items.jsonl"
    views = sorted(next(iter(day_two["catalog"].values())))
    items.write_text(json.dumps({"item_id": "added-by-cli", **{v: "" for v in views},
                                 "title": "Transparent desk organizer with drawers"}) + "\n")
    result = subprocess.run([os.path.join(REPO, "bin", "ccfrec"), "catalog", "add",
                             "--model-base", serving, "--model-name", "ccfrec", "--items",
                             str(items)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["added"] == 1
    from tf_ccfrec.export import saved_model

    model = saved_model.load(summary["path"])
    known = model.signatures["embed_items"](item_ids=tf.constant(
        ["added-by-cli", "copy-1", next(iter(day_two["catalog"])), "nothing"]))["known"]
    assert known.numpy().tolist() == [True, True, True, False]


@pytest.mark.parametrize("flags,tasks", [
    (["--input-pattern", "interactions/span-{SPAN}/*", "--window-spans", "7", "--warm-start"],
     {"CCFRecTrainer", "Transform", "ExampleGen", "SemanticCodesGen", "Pusher"}),
    (["--catalog-pattern", "catalog/span-{SPAN}/*", "--item-format", "jsonl",
      "--catalog-only"],
     {"CatalogExampleGen", "SemanticCodesGen", "CatalogRefresh", "latest_interactions_resolver",
      "Evaluator", "Pusher"}),
])
def test_day_two_pipelines_compile_for_kubeflow(tmp_path, flags, tasks):
    """Both day-two pipelines compile to Kubeflow V2 specs (whose compiler takes only latest and
    latest-blessed resolvers: the window is ExampleGen's, not a span-range resolver); the
    warm-started Trainer and SemanticCodesGen read the latest blessed model."""
    from tfx_pipeline import cli

    output = tmp_path / "spec.json"
    assert cli.main(["pipeline", "compile", "--output", str(output), "--pipeline-root",
                     "gs://acme/root", "--input", "gs://acme/data", "--format", "lcrec",
                     "--serving-model-dir", "gs://acme/serving/ccfrec", *flags]) == 0
    job = json.loads(output.read_text())
    dag = job["pipelineSpec"]["root"]["dag"]["tasks"]
    assert tasks <= set(dag)
    assert ("CCFRecTrainer" in dag) == ("--catalog-only" not in flags)
    for node in ("SemanticCodesGen",) + (("CCFRecTrainer",) if "CCFRecTrainer" in dag else
                                         ("CatalogRefresh",)):
        inputs = dag[node]["inputs"]["artifacts"]
        assert inputs["base_model"]["taskOutputArtifact"]["producerTask"] == \
            "latest_blessed_model_resolver-model-resolver", (node, inputs)
    assert "{SPAN}" in output.read_text()


def test_window_directories_are_the_newest_spans_up_to_the_resolved_one(tmp_path):
    from tfx_pipeline.components.example_gen import merge_summaries, window_directories

    for name in ("span-1", "span-2", "span-3", "span-10", "span-x", "other-4"):
        (tmp_path / "interactions" / name).mkdir(parents=True)
    (tmp_path / "interactions" / "span-7").write_text("a file, not a span directory")
    pattern = "interactions/span-{SPAN}/*"
    assert window_directories(str(tmp_path), pattern, 10, 2) == [
        str(tmp_path / "interactions" / "span-3"), str(tmp_path / "interactions" / "span-10")]
    assert window_directories(str(tmp_path), pattern, 3, 5) == [
        str(tmp_path / "interactions" / f"span-{i}") for i in (1, 2, 3)]
    with pytest.raises(ValueError, match="needs {SPAN} in the pattern's directory"):
        window_directories(str(tmp_path), "interactions/*-{SPAN}.json", 3, 2)
    merged = merge_summaries([
        {"items": ["a", "b"], "categories": {"a": "X", "b": "Y"}, "users": 2, "interactions": 5},
        {"items": ["b", "c"], "categories": {"c": "Z"}, "users": 1, "interactions": 3}])
    assert merged == {"items": ["a", "b", "c"], "categories": {"a": "X", "b": "Y", "c": "Z"},
                      "users": 3, "interactions": 8}
