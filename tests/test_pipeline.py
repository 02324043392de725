"""The TFX pipeline end to end with LocalDagRunner on real Office users: components, cache,
SIGTERM and resume, a cache that follows the code, TFMA against the library's evaluation, the
report (blessing on the valid split, test reported), the pushed model; schema anomalies stop a
run; the Kubeflow V2 spec compiles with no path of the checkout in it."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import REPO

UPSTREAM = ("ExampleGen", "CatalogExampleGen", "StatisticsGen", "SchemaGen", "CuratedSchemaGen",
            "ExampleValidator", "AnomaliesGate", "SemanticCodesGen", "Transform")
ALL_NODES = UPSTREAM + ("CCFRecTrainer", "latest_blessed_model_resolver", "Evaluator",
                        "TestEvaluator", "EvaluationReportGen", "Pusher")


def _runner(root, users, embedding_cache, *extra, cwd=REPO):
    return subprocess.Popen([sys.executable, "-m", "tests.pipeline_runner", str(root),
                             str(users), "--embedding-cache", embedding_cache,
                             *map(str, extra)], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _changed_tree(directory, changed):
    """A copy of the pipeline package and the tests with one comment added to `changed`."""
    for name in ("tfx_pipeline", "tests"):
        shutil.copytree(os.path.join(REPO, name), os.path.join(directory, name),
                        ignore=shutil.ignore_patterns("__pycache__"))
    with open(os.path.join(directory, changed), "a") as f:
        f.write("\n# a changed line\n")
    return directory


def _finish(process, timeout=900):
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


def _summary(output):
    return json.loads(output.strip().splitlines()[-1])


def _states(root):
    from tfx_pipeline import outputs

    return outputs.runs(os.path.join(root, "tfx", "metadata.sqlite"), "ccfrec")


def _wait_for_training(root, process, timeout=600):
    """Blocks until the Trainer has written its first TensorBoard event (training started)."""
    model_runs = os.path.join(root, "tfx", "CCFRecTrainer", "model_run")
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert process.poll() is None, process.communicate()[0][-3000:]
        if os.path.isdir(model_runs):
            for run in os.listdir(model_runs):
                board = os.path.join(model_runs, run, "tensorboard")
                if os.path.isdir(board) and os.listdir(board):
                    return
        time.sleep(0.5)
    raise AssertionError("the Trainer did not start")


def _tfma_overall(evaluation_uri):
    from tfx_pipeline.components.evaluation_report import slice_table

    return {row["slice"]: row for row in slice_table(evaluation_uri)}


@pytest.fixture(scope="module")
def pipeline_runs(tmp_path_factory, embedding_cache):
    """Run 1 killed with SIGTERM during training, run 2 (resumes), run 3 (unchanged inputs),
    run 4 (unchanged inputs, the report component's module changed)."""
    root = tmp_path_factory.mktemp("pipeline")
    first = _runner(root, 300, embedding_cache)
    _wait_for_training(root, first)
    first.send_signal(signal.SIGTERM)
    code, killed_output = _finish(first, timeout=300)
    after_kill = _states(root)
    code2, output2 = _finish(_runner(root, 300, embedding_cache))
    assert code2 == 0, output2[-5000:]
    code3, output3 = _finish(_runner(root, 300, embedding_cache))
    assert code3 == 0, output3[-5000:]
    changed = _changed_tree(tmp_path_factory.mktemp("changed"),
                            "tfx_pipeline/components/evaluation_report.py")
    code4, output4 = _finish(_runner(root, 300, embedding_cache, cwd=changed))
    assert code4 == 0, output4[-5000:]
    return {"root": root, "killed": (code, killed_output, after_kill),
            "summaries": [_summary(output2), _summary(output3)], "runs": _states(root),
            "outputs": [output2, output3]}


def test_sigterm_during_training_then_resume(pipeline_runs):
    code, output, after_kill = pipeline_runs["killed"]
    assert code != 0
    assert "PipelineTerminated" in output
    killed = after_kill[-1]["executions"]
    # The interrupted execution is closed (CANCELED), not left running; nothing ran after it.
    assert killed["CCFRecTrainer"]["state"] == "CANCELED"
    assert "Evaluator" not in killed and "Pusher" not in killed
    assert all(killed[node]["state"] == "COMPLETE" for node in UPSTREAM)
    resumed = pipeline_runs["runs"][1]["executions"]
    assert all(resumed[node]["state"] == "CACHED" for node in UPSTREAM), resumed
    for node in ("CCFRecTrainer", "Evaluator", "TestEvaluator", "EvaluationReportGen", "Pusher"):
        assert resumed[node]["state"] == "COMPLETE"
    # A consistent store: every execution of every run ended (complete, cached or failed).
    for run in pipeline_runs["runs"]:
        assert {e["state"] for e in run["executions"].values()} <= {"COMPLETE", "CACHED",
                                                                     "FAILED", "CANCELED"}


def test_each_component_is_reported_as_it_finishes(pipeline_runs):
    """The runner's progress lines come one a component, in the order they ran, before the
    summary, with the state ML Metadata recorded."""
    for output, run in zip(pipeline_runs["outputs"], pipeline_runs["runs"][1:3]):
        lines = output.strip().splitlines()
        finished = [line.split()[1:3] for line in lines if line.startswith("finished: ")]
        assert [node for node, _ in finished] == list(run["executions"])
        assert dict(finished) == {n: e["state"] for n, e in run["executions"].items()}
        assert lines.index(next(l for l in lines if l.startswith("finished: Pusher"))) < \
            len(lines) - 1


def test_unchanged_inputs_come_from_the_cache(pipeline_runs):
    third = pipeline_runs["runs"][2]["executions"]
    assert set(third) == set(ALL_NODES)
    for node in UPSTREAM + ("CCFRecTrainer",):
        assert third[node]["state"] == "CACHED", (node, third[node])
    # The Evaluator now has a baseline (the model blessed by the previous run) and compares.
    summary = pipeline_runs["summaries"][1]
    assert summary["report"]["blessed"] is True
    assert summary["pushed_model"]


def test_a_changed_module_reruns_exactly_its_components(pipeline_runs):
    """Run 4 runs the same pipeline on the same data from a tree whose EvaluationReportGen
    module has one more line: that component runs again, everything else is CACHED (the
    resolver, which runs no code of ours, resolves every time)."""
    fourth = pipeline_runs["runs"][3]["executions"]
    assert set(fourth) == set(ALL_NODES)
    assert fourth["EvaluationReportGen"]["state"] == "COMPLETE"
    assert fourth["latest_blessed_model_resolver"]["state"] == "COMPLETE"
    for node in set(ALL_NODES) - {"EvaluationReportGen", "latest_blessed_model_resolver"}:
        assert fourth[node]["state"] == "CACHED", (node, fourth[node])


def test_artifacts_schema_statistics_and_report(pipeline_runs):
    tfx_root = os.path.join(pipeline_runs["root"], "tfx")
    from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

    [statistics] = os.listdir(os.path.join(tfx_root, "StatisticsGen", "statistics"))
    for split in ("train", "valid", "test"):
        path = os.path.join(tfx_root, "StatisticsGen", "statistics", statistics,
                            f"Split-{split}", "FeatureStats.pb")
        stats = statistics_pb2.DatasetFeatureStatisticsList.FromString(open(path, "rb").read())
        assert stats.datasets[0].num_examples > 0
        assert {f.path.step[0] for f in stats.datasets[0].features} >= {"history", "target"}
    [schema_dir] = os.listdir(os.path.join(tfx_root, "SchemaGen", "schema"))
    from google.protobuf import text_format

    schema = text_format.Parse(open(os.path.join(tfx_root, "SchemaGen", "schema", schema_dir,
                                                 "schema.pbtxt")).read(), schema_pb2.Schema())
    assert {f.name for f in schema.feature} >= {"history", "target", "target_popularity"}
    summary = pipeline_runs["summaries"][0]
    report_dir = summary["report_dir"]
    assert os.path.getsize(os.path.join(report_dir, "recall_at_10.png")) > 1000
    report = open(os.path.join(report_dir, "report.md")).read()
    for name in ("target_popularity=head", "target_popularity=tail", "history_length_bucket=",
                 "target_category=", "| overall |", "decided on the **valid** split",
                 "## valid (blessing)", "## test (reported)"):
        assert name in report


def test_tfma_equals_the_library_evaluation(pipeline_runs):
    """TFMA's metrics over the exported model equal tf_ccfrec's own evaluation of the same
    model on the same test examples, overall and for the head/tail slices."""
    summary = pipeline_runs["summaries"][0]
    # ExampleGen's statistics: 300 users, one example per user in valid and test.
    from tf_ccfrec.data import readers

    raw = readers.read("lcrec", os.path.join(pipeline_runs["root"], "raw"))
    dataset = summary["dataset"]
    assert dataset["users"] == 300 and dataset["items"] == len(raw.items)
    assert dataset["interactions"] == sum(map(len, raw.sequences.values()))
    assert dataset["examples_valid"] == dataset["examples_test"] == 300
    assert dataset["examples_catalog"] == len(raw.items)
    assert summary["report"]["blessing_split"] == "valid"
    slices = {row["slice"]: row for row in summary["report"]["test_slices"]}
    valid = {row["slice"]: row for row in summary["report"]["slices"]}
    trainer_runs = os.path.join(pipeline_runs["root"], "tfx", "CCFRecTrainer", "model_run")
    finished = [r for r in os.listdir(trainer_runs)
                if os.path.exists(os.path.join(trainer_runs, r, "metrics.json"))]
    [run] = finished
    library = json.load(open(os.path.join(trainer_runs, run, "metrics.json")))["test"]
    names = ("recall@5", "recall@10", "ndcg@5", "ndcg@10", "sampled_hr@10", "sampled_ndcg@10")
    for tfma_slice, ours in (("overall", library), ("target_popularity=head", library["head"]),
                             ("target_popularity=tail", library["tail"])):
        assert slices[tfma_slice]["example_count"] == ours["examples"]
        for name in names:
            assert slices[tfma_slice][name] == pytest.approx(ours[name], abs=1e-6), \
                (tfma_slice, name)
    assert library["examples"] == 300
    # The blessing's numbers are the validation split's, which the Trainer reports as well.
    library_valid = json.load(open(os.path.join(trainer_runs, run, "metrics.json")))["valid"]
    assert valid["overall"]["recall@10"] == pytest.approx(library_valid["recall@10"], abs=1e-6)


def test_pushed_model_takes_raw_item_ids(pipeline_runs):
    import tensorflow as tf

    from tf_ccfrec.export import saved_model

    pushed = pipeline_runs["summaries"][0]["pushed_model"]
    assert pushed.startswith(os.path.join(str(pipeline_runs["root"]), "serving", "ccfrec"))
    assert os.path.basename(pushed.rstrip("/")).isdigit()
    loaded = saved_model.load(pushed)
    from tf_ccfrec.data import readers

    data = readers.read("lcrec", os.path.join(pipeline_runs["root"], "raw"))
    user = next(iter(data.sequences))
    history = data.sequences[user][:-1]
    # Raw ids, padded, and an id with a stray space and compatibility character the transform
    # graph normalizes (NFKC, strip).
    rows = tf.constant([history + [""], [" " + history[-1] + "\u3000"] + [""] * len(history)])
    answer = loaded.signatures["serving_default"](history=rows)
    assert answer["item_ids"].shape == (2, 10)
    assert answer["known_items"].numpy().tolist() == [min(len(history), 20), 1]
    assert not answer["fallback"].numpy().any()
    alone = loaded.signatures["serving_default"](history=tf.constant([[history[-1]]]))
    np.testing.assert_allclose(answer["scores"].numpy()[1], alone["scores"].numpy()[0],
                               rtol=1e-5)


def test_rest_api_serves_the_pushed_model(pipeline_runs, tmp_path):
    """`ccfrec serve` over the Pusher's directory answers raw item ids; the ScaNN and exact
    searches leave out the same history when its ids need the transform graph's
    normalization."""
    from tests import serving_server
    from tf_ccfrec.data import readers

    pushed = pipeline_runs["summaries"][1]["pushed_model"]
    version = int(os.path.basename(pushed.rstrip("/")))
    server = serving_server.start(["--model-base", os.path.join(str(pipeline_runs["root"]),
                                                                 "serving"),
                                   "--model-name", "ccfrec"], str(tmp_path))
    try:
        assert server.versions() == {version: "AVAILABLE"}
        data = readers.read("lcrec", os.path.join(pipeline_runs["root"], "raw"))
        histories = [seq[:-1] for seq in list(data.sequences.values())[:3]]
        status, rows = server.predict(histories)
        assert status == 200, rows
        assert [len(r["item_ids"]) for r in rows["predictions"]] == [10, 10, 10]
        assert not any(r["fallback"] for r in rows["predictions"])
        raw = [[" " + item + "\u3000" for item in h] for h in histories]
        answers = {search: server.predict(raw, "serving_excluding_history", search=search)
                   for search in ("exact", "scann")}
        assert answers["exact"][0] == answers["scann"][0] == 200
        for exact, scann, history in zip(answers["exact"][1]["predictions"],
                                         answers["scann"][1]["predictions"], histories):
            assert exact["item_ids"] == scann["item_ids"]
            assert not set(exact["item_ids"]) & set(history[-20:])
        # Bytes that are not UTF-8 through the transform graph's NormalizeUTF8: an unknown id.
        status, answer = server.predict([[{"b64": "//79"}]])
        assert status == 200, answer
        assert answer["predictions"][0]["known_items"] == 0
        assert answer["predictions"][0]["fallback"]
    finally:
        assert server.stop() == 0


def test_schema_anomalies_stop_the_run(tmp_path, embedding_cache):
    """Histories longer than the curated schema allows: the run stops at AnomaliesGate with the
    split, feature and problem; nothing is trained or pushed. The Beam components run on
    DirectRunner's multi-processing mode with 2 worker processes here."""
    code, output = _finish(_runner(tmp_path, 40, embedding_cache, "--max-history", 30,
                                   "--min-length", 25, "--running-mode", "multi_processing",
                                   "--workers", 2), timeout=600)
    assert code != 0
    assert "DataAnomaliesError" in output
    assert "the examples do not match the schema" in output
    assert "history:" in output and "split train" in output
    [run] = _states(tmp_path)
    executions = run["executions"]
    assert executions["AnomaliesGate"]["state"] == "FAILED"
    assert "CCFRecTrainer" not in executions and "Pusher" not in executions
    assert not os.path.exists(os.path.join(tmp_path, "serving"))


def test_kubeflow_v2_spec(tmp_path):
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    from tfx_pipeline import cli

    output = tmp_path / "ccfrec_pipeline.json"
    image = "europe-docker.pkg.dev/acme/recs/ccfrec-pipeline:1.0"
    assert cli.main(["pipeline", "compile", "--output", str(output), "--image", image,
                     "--pipeline-root", "gs://acme-recs/root", "--input",
                     "gs://acme-recs/data/office", "--format", "lcrec",
                     "--serving-model-dir", "gs://acme-recs/serving/ccfrec",
                     "--beam-arg=--runner=DataflowRunner", "--beam-arg=--region=europe-west4",
                     "--preset", "office"]) == 0
    job = json.loads(output.read_text())
    spec = pipeline_spec_pb2.PipelineSpec()
    json_format.ParseDict(job["pipelineSpec"], spec, ignore_unknown_fields=True)
    components = set(ALL_NODES) - {"latest_blessed_model_resolver"}
    # The resolver compiles to two resolver tasks (model, blessing).
    assert set(spec.root.dag.tasks) == components | {
        "latest_blessed_model_resolver-model-resolver",
        "latest_blessed_model_resolver-model-blessing-resolver"}
    executors = job["pipelineSpec"]["deploymentSpec"]["executors"]
    containers = {name: e["container"] for name, e in executors.items() if "container" in e}
    assert {f"{n}_executor" for n in components} <= set(containers)
    assert {c["image"] for c in containers.values()} == {image}
    text = output.read_text()
    for needle in ("--runner=DataflowRunner", "tfx_pipeline.models.model.run_fn",
                   "tfx_pipeline.models.preprocessing.preprocessing_fn",
                   "gs://acme-recs/serving/ccfrec", "gs://acme-recs/data/office"):
        assert needle in text, needle
    # Nothing points at the compiling machine: no path of the checkout or of the working
    # directory; the schema comes from the installed package.
    for local in {REPO, os.getcwd()}:
        assert local not in text, local
    assert "interactions.pbtxt" not in text
    # Every artifact type's schema title is what TFX's Kubeflow V2 entrypoint imports.
    import yaml
    from tfx.orchestration.kubeflow.v2 import compiler_utils
    from tfx.utils import import_utils

    titles = {yaml.safe_load(m.group(1).encode().decode("unicode_escape"))["title"]
              for m in re.finditer(r'"instanceSchema": "((?:[^"\\]|\\.)*)"', text)}
    assert {"tfx_pipeline.SemanticCodes", "tfx_pipeline.EvaluationReport"} <= titles
    for title in titles:
        klass = import_utils.import_class_by_path(compiler_utils.TITLE_TO_CLASS_PATH.get(title,
                                                                                         title))
        assert klass.TYPE_NAME == title.split(".", 1)[1] if title.startswith("tfx.") \
            else klass.TYPE_NAME == title, title
    # Every component that runs tf-ccfrec code carries its code fingerprint.
    from tfx_pipeline import fingerprint

    for node in set(fingerprint.ENTRY_MODULES) & components:
        assert fingerprint.code_fingerprint(node) in text, node
    # Without --vertex-training-workers the Trainer trains in its own container.
    assert containers["CCFRecTrainer_executor"]["args"][1] == \
        "tfx_pipeline.components.trainer.Executor"
    dockerfile = open(os.path.join(REPO, "Dockerfile")).read()
    assert dockerfile.splitlines()[[l.startswith("FROM") for l in
                                    dockerfile.splitlines()].index(True)] == \
        "FROM tensorflow/tfx:1.21.0"


def test_kubeflow_v2_spec_hands_the_trainer_to_vertex_training(tmp_path):
    """--vertex-training-workers 3: the Trainer's container starts a Vertex AI CustomJob (TFX's
    Vertex Trainer extension) of one chief and two workers running the pipeline's image, each
    running CCFRecTrainer's own executor."""
    from tfx_pipeline import cli
    from tfx_pipeline.components import trainer, vertex_trainer

    output = tmp_path / "ccfrec_pipeline.json"
    image = "europe-docker.pkg.dev/acme/recs/ccfrec-pipeline:1.0"
    common = ["pipeline", "compile", "--output", str(output), "--image", image,
              "--pipeline-root", "gs://acme-recs/root", "--input", "gs://acme-recs/data/office",
              "--format", "lcrec", "--serving-model-dir", "gs://acme-recs/serving/ccfrec"]
    assert cli.main(common + ["--vertex-training-workers", "3"]) == 2  # no project, region
    assert cli.main(common + ["--vertex-training-workers", "3", "--vertex-project", "acme",
                              "--vertex-region", "europe-west4",
                              "--vertex-accelerator", "NVIDIA_TESLA_T4:1"]) == 0
    spec = json.loads(output.read_text())["pipelineSpec"]
    container = spec["deploymentSpec"]["executors"]["CCFRecTrainer_executor"]["container"]
    assert container["args"][:2] == ["--executor_class_path",
                                     "tfx_pipeline.components.vertex_trainer.VertexExecutor"]
    assert vertex_trainer.VertexExecutor()._GetExecutorClass() is trainer.Executor
    parameters = spec["root"]["dag"]["tasks"]["CCFRecTrainer"]["inputs"]["parameters"]
    custom = json.loads(parameters["custom_config"]["runtimeValue"]["constantValue"]
                        ["stringValue"])
    assert custom["ai_platform_enable_vertex"] is True
    assert custom["ai_platform_vertex_region"] == "europe-west4"
    job = custom["ai_platform_training_args"]
    assert job["project"] == "acme"
    pools = job["job_spec"]["worker_pool_specs"]
    assert [p["replica_count"] for p in pools] == [1, 2]
    for pool in pools:
        assert pool["container_spec"] == {"image_uri": image}
        assert pool["machine_spec"] == {"machine_type": "n1-standard-8",
                                        "accelerator_type": "NVIDIA_TESLA_T4",
                                        "accelerator_count": 1}
    # The training settings travel beside the job's.
    assert custom["model"] == "ccfrec" and "code_fingerprint" in custom
