"""The compiled Kubeflow V2 spec, executed as the Kubeflow launcher executes it
(`tests/kfp_launcher.py`): every task's own container command (TFX's Kubeflow V2 entrypoint and
ExampleGen's driver) in a fresh process whose working directory is outside the repository and
which imports tf-ccfrec installed from its wheel, not the source tree. Two runs on real Office
users: the first ends with a blessed, pushed model; the second's resolver finds that model and
its Evaluator compares against it."""

import json
import os
import subprocess
import sys

import pytest

from tests import kfp_launcher, pipeline_runner
from tests import wheel as wheels
from tests.conftest import REPO

IMAGE = "europe-docker.pkg.dev/acme/recs/ccfrec-pipeline:1.0"


@pytest.fixture(scope="module")
def launched(tmp_path_factory, embedding_cache):
    from tfx_pipeline import kubeflow_v2_runner

    base = str(tmp_path_factory.mktemp("kubeflow"))
    site = wheels.install(wheels.build(os.path.join(base, "build")), os.path.join(base, "site"))
    config = pipeline_runner.config(base, 300, embedding_cache=embedding_cache)
    spec_file = kubeflow_v2_runner.compile_pipeline(
        config, os.path.join(base, "ccfrec_pipeline.json"), IMAGE)
    with open(spec_file) as f:
        job = json.load(f)
    work = os.path.join(base, "work")
    os.makedirs(work)
    env = wheels.environment(site)
    imported = subprocess.run(
        [sys.executable, "-c", "import tf_ccfrec, tfx_pipeline; "
         "print(tf_ccfrec.__file__); print(tfx_pipeline.__file__)"],
        env=env, cwd=work, check=True, stdout=subprocess.PIPE, text=True).stdout.split()
    store = os.path.join(base, "artifacts.json")
    runs = []
    for _ in range(2):
        launcher = kfp_launcher.Launcher(job, store=store, env=env, cwd=work)
        runs.append((launcher.run(), launcher.log))
    return {"base": base, "site": site, "config": config, "job": job, "imported": imported,
            "runs": runs}


def test_tasks_import_the_installed_package(launched):
    assert all(path.startswith(launched["site"] + os.sep) for path in launched["imported"])
    assert not any(path.startswith(REPO) for path in launched["imported"])
    assert REPO not in json.dumps(launched["job"])


RESOLVERS = {"latest_blessed_model_resolver-model-resolver",
             "latest_blessed_model_resolver-model-blessing-resolver"}


def test_every_task_ran_through_its_own_command_then_from_the_cache(launched):
    """Run 1 runs every container; run 2 (same data, same code) reuses every output whose
    inputs did not change: only what sees the new baseline (the Evaluator, the report, the
    Pusher) runs again."""
    tasks = launched["job"]["pipelineSpec"]["root"]["dag"]["tasks"]
    kinds = []
    for outputs, log in launched["runs"]:
        assert [entry["task"] for entry in log] == kfp_launcher.topological_order(tasks)
        kinds.append({entry["task"]: entry["kind"] for entry in log})
    assert {t for t, k in kinds[0].items() if k == "resolver"} == RESOLVERS
    assert {t for t, k in kinds[0].items() if k == "container"} == set(tasks) - RESOLVERS
    assert {t for t, k in kinds[1].items() if k == "container"} == {
        "Evaluator", "EvaluationReportGen", "Pusher"}
    assert {t for t, k in kinds[1].items() if k == "cached"} == set(tasks) - RESOLVERS - {
        "Evaluator", "EvaluationReportGen", "Pusher"}


def test_the_first_run_ends_with_a_blessed_pushed_model(launched):
    from tf_ccfrec import storage
    from tf_ccfrec.export import saved_model

    outputs, _ = launched["runs"][0]
    # No earlier blessing: the resolvers find nothing, the Evaluator has no baseline.
    assert outputs["latest_blessed_model_resolver-model-blessing-resolver"]["model_blessing"] \
        == []
    assert outputs["latest_blessed_model_resolver-model-resolver"]["model"] == []
    [blessing] = outputs["Evaluator"]["blessing"]
    assert blessing["metadata"]["blessed"] == 1
    [pushed] = outputs["Pusher"]["pushed_model"]
    assert pushed["metadata"]["pushed"] == 1
    destination = pushed["metadata"]["pushed_destination"]
    assert destination.startswith(launched["config"].serving_model_dir + os.sep)
    assert storage.is_complete(destination)
    model = saved_model.load(destination)
    assert model is not None
    # ExampleGen's statistics travel in its output artifact's metadata.
    [examples] = outputs["ExampleGen"]["examples"]
    assert examples["metadata"]["users"] == 300
    assert json.loads(examples["metadata"]["split_names"]) == ["train", "valid", "test"]
    # Every artifact lies under the pipeline root, in this job's directory.
    for task, artifacts in outputs.items():
        for listed in artifacts.values():
            for artifact in listed:
                assert artifact["uri"].startswith(launched["config"].pipeline_root + os.sep)


def test_the_second_run_compares_against_the_first_runs_model(launched):
    first, _ = launched["runs"][0]
    second, _ = launched["runs"][1]
    [baseline] = second["latest_blessed_model_resolver-model-resolver"]["model"]
    assert baseline["name"] == first["CCFRecTrainer"]["model"][0]["name"]
    [blessing] = second["Evaluator"]["blessing"]
    assert blessing["metadata"]["baseline_model_id"] == baseline["name"]
    assert blessing["metadata"]["current_model_id"] == second["CCFRecTrainer"]["model"][0][
        "name"]
