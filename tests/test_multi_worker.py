"""Training on two real worker processes (MultiWorkerMirroredStrategy, TF_CONFIG on 127.0.0.1
ports) over a slice of Office: one run directory, written by the chief only; the loss curve of
one worker with the same global batch; a time budget that runs out mid-epoch ends both workers,
and a restart resumes both from the chief's checkpoint and takes the chief's plateau decays."""

import json
import os
import socket
import subprocess
import sys

import pytest

from tests import data_files
from tests.conftest import REPO

STEPS = 8
BATCH = 32


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _train(output, data, scratch, *args, workers=2, timeout=420):
    """Starts `workers` worker processes (1: no cluster) and waits; [(exit code, output)],
    output being the worker's stderr then its stdout, whose last line is its JSON result (the
    streams are read apart: gRPC may log to stderr after the result, when the other worker's
    server has gone). A worker still running at `timeout` fails the test (a hang) after all
    are killed."""
    prepared, codes = data
    env = {**os.environ, "TMPDIR": str(scratch)}
    ports = ",".join(map(str, _free_ports(workers))) if workers > 1 else ""
    processes = [subprocess.Popen(
        [sys.executable, "-m", "tests.multi_worker", str(output), prepared, codes,
         "--index", str(i), "--ports", ports, "--batch-size", str(BATCH), *map(str, args)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(workers)]
    results = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=timeout)
            results.append((process.returncode, stderr + stdout))
    except subprocess.TimeoutExpired:
        for process in processes:
            process.kill()
        raise AssertionError(f"a worker did not finish within {timeout} s (hang)")
    return results


def _last_json(output):
    return json.loads(output.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return data_files.office_slice(tmp_path_factory.mktemp("office_workers"), 150, 16, 16)


@pytest.fixture(scope="module")
def curves(tmp_path_factory, data):
    base = tmp_path_factory.mktemp("curves")
    scratch = base / "scratch"
    scratch.mkdir()
    one = _train(base / "one", data, scratch, "--steps-per-epoch", STEPS, workers=1)
    two = _train(base / "two", data, scratch, "--steps-per-epoch", STEPS)
    return {"base": base, "scratch": scratch, "one": one, "two": two}


def test_two_workers_write_one_run_directory(curves):
    two = curves["two"]
    assert [code for code, _ in two] == [0, 0], two[0][1][-3000:] + two[1][1][-3000:]
    results = [_last_json(output) for _, output in two]
    assert [r["chief"] for r in results] == [True, False]
    assert {r["replicas"] for r in results} == {2}
    run = curves["base"] / "two"
    for name in ("history.json", "metrics.json", "config.json", "item_ids.txt", "checkpoints",
                 "tensorboard"):
        assert (run / name).exists(), name
    assert json.loads((run / "metrics.json").read_text())["replicas"] == 2
    # The other worker wrote to a scratch directory and deleted it.
    assert not [p for p in os.listdir(curves["scratch"]) if p.startswith("ccfrec-worker-")]
    # Both workers hold the same weights: the same validation metrics.
    assert results[0]["valid"] == results[1]["valid"]


def test_two_workers_follow_one_workers_loss_curve(curves):
    [(code, output)] = curves["one"]
    assert code == 0, output[-3000:]
    one = json.loads((curves["base"] / "one" / "history.json").read_text())
    two = json.loads((curves["base"] / "two" / "history.json").read_text())
    assert [h["steps"] for h in one] == [h["steps"] for h in two] == [STEPS] * 3
    losses_one = [h["loss"] for h in one]
    losses_two = [h["loss"] for h in two]
    assert losses_one[-1] < losses_one[0]
    assert losses_two == pytest.approx(losses_one, rel=0.05)


def test_budget_mid_epoch_ends_both_then_both_resume_and_take_the_chiefs_plateau_decay(
        tmp_path, data):
    """A 24-second budget runs out inside the first epoch of 400 steps and ends both workers.
    The restart resumes both from the chief's checkpoint at a zero learning rate, which makes
    every epoch after the first a plateau epoch: with patience 1 and one decay, both decay after
    epoch 2 (the mirrored learning-rate scale to 0.3) and stop after epoch 3."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    run = tmp_path / "run"
    stopped = _train(run, data, scratch, "--steps-per-epoch", 400, "--budget-minutes", 0.4)
    assert [code for code, _ in stopped] == [0, 0], stopped[0][1][-3000:] + stopped[1][1][-3000:]
    assert all("stopping: time budget reached" in output for _, output in stopped)
    [epoch] = json.loads((run / "history.json").read_text())
    assert epoch["epoch"] == 1 and 0 < epoch["steps"] < 400
    resumed = _train(run, data, scratch, "--steps-per-epoch", 4, "--max-epochs", 10,
                     "--learning-rate", 0.0, "--patience", 1, "--plateau-decays", 1)
    assert [code for code, _ in resumed] == [0, 0], resumed[0][1][-3000:] + resumed[1][1][-3000:]
    checkpoint = os.path.join(str(run), "checkpoints", "ckpt-1")
    for _, output in resumed:
        assert f"resuming after epoch 1 from {checkpoint}" in output
        assert "learning rate x0.3 (decay 1 of 1)" in output and "early stop" in output
        assert _last_json(output)["epochs"] == 3
        assert _last_json(output)["plateau_decays_done"] == 1
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3] and history[1]["steps"] == 4
    assert [h["learning_rate_scale"] for h in history] == pytest.approx([1.0, 1.0, 0.3])
    assert not [p for p in os.listdir(scratch) if p.startswith("ccfrec-worker-")]
