"""`train`: epochs, validation, best weights, resuming, and the CLI's JSON line, on a slice of
Office with codes from random view vectors (the encoder is tested elsewhere)."""

import json
import os
import subprocess

import numpy as np
import pytest

from tests import data_files
from tests.conftest import REPO
from tf_ccfrec.codes import artifact
from tf_ccfrec.models.config import ModelConfig
from tf_ccfrec.training import restore, train

SMALL = ModelConfig(dim=16, ffn_dim=32, fusion_layers=1, sequence_layers=1, dropout=0.0)


@pytest.fixture(scope="module")
def office_slice(tmp_path_factory):
    return data_files.office_slice(tmp_path_factory.mktemp("office_slice"), 150, 16, 16)


def test_train_resume_and_evaluate(tmp_path, office_slice):
    prepared, codes = office_slice
    config = train.TrainConfig(batch_size=64, max_epochs=2, warmup_steps=5, patience=5)
    first = train.train(prepared, codes, str(tmp_path / "run"), "ccfrec", SMALL, config,
                        verbose=0)
    assert first["epochs"] == 2
    assert 0.1 < first["peak_rss_gib"] < 24
    for split in ("valid", "test"):
        assert first[split]["examples"] == 150
        assert 0.0 <= first[split]["ndcg@10"] <= first[split]["recall@10"] <= 1.0
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert first["best_valid_ndcg@10"] == pytest.approx(max(h["valid_ndcg@10"] for h in history))
    assert os.listdir(tmp_path / "run" / "tensorboard")
    # Resuming runs only the missing epoch.
    more = train.TrainConfig(batch_size=64, max_epochs=3, warmup_steps=5, patience=5)
    resumed = train.train(prepared, codes, str(tmp_path / "run"), "ccfrec", SMALL, more,
                          verbose=0)
    assert resumed["epochs"] == 3
    resumed_history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["epoch"] for h in resumed_history] == [1, 2, 3]
    # Time accumulates over both invocations.
    assert resumed_history[:2] == history
    assert resumed_history[2]["seconds"] > history[1]["seconds"]
    assert resumed["train_seconds"] > first["train_seconds"]
    # Evaluating the saved run gives the metrics training reported, under both protocols.
    again = restore.evaluate_run(str(tmp_path / "run"), "test")
    assert again["ndcg@10"] == pytest.approx(resumed["test"]["ndcg@10"], abs=1e-6)
    filtered = restore.evaluate_run(str(tmp_path / "run"), "test", exclude_history=True)
    reported = resumed["test_excluding_history"]
    for key in ("recall@10", "ndcg@10", "recall@5"):
        assert filtered[key] == pytest.approx(reported[key], abs=1e-6)
    # Taking history items out of the ranking can only move a target up, and on these
    # histories it does move some.
    ranks = np.load(tmp_path / "run" / "test_ranks.npz")["ranks"]
    ranks_filtered = np.load(tmp_path / "run" / "test_ranks_excluding_history.npz")["ranks"]
    assert ranks.shape == ranks_filtered.shape
    assert (ranks_filtered <= ranks).all() and (ranks_filtered < ranks).any()
    assert set(reported) >= {"recall@10", "ndcg@10", "head", "tail", "examples"}


def test_cli_train_sasrec_prints_one_json_line(tmp_path, office_slice):
    prepared, codes = office_slice
    result = subprocess.run(
        [os.path.join(REPO, "bin", "ccfrec"), "train", "--model", "sasrec", "--data", prepared,
         "--codes", codes, "--output", str(tmp_path / "run"), "--epochs", "1",
         "--batch-size", "64", "--no-progress"],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert metrics["model"] == "sasrec" and metrics["epochs"] == 1
    assert set(metrics["test"]) >= {"recall@5", "recall@10", "ndcg@5", "ndcg@10",
                                    "sampled_hr@10", "sampled_ndcg@10", "head", "tail"}
    # The run exports to a TF Serving version directory that answers with raw item ids.
    export = subprocess.run(
        [os.path.join(REPO, "bin", "ccfrec"), "export", "--model-dir", str(tmp_path / "run"),
         "--output", str(tmp_path / "serving" / "sasrec" / "1"), "--top-k", "5"],
        capture_output=True, text=True)
    assert export.returncode == 0, export.stderr[-2000:]
    import tensorflow as tf

    loaded = tf.saved_model.load(str(tmp_path / "serving" / "sasrec" / "1"))
    items = artifact.load(codes).item_ids
    out = loaded.signatures["serving_default"](history=tf.constant([[items[0], items[1]]]))
    assert out["item_ids"].shape == (1, 5)
    assert set(x.decode() for x in out["item_ids"][0].numpy()) <= set(items)


@pytest.fixture(scope="module")
def office_users(tmp_path_factory):
    """1,000 users: codes carry no text signal, so what beats popularity is the sequence model."""
    return data_files.office_slice(tmp_path_factory.mktemp("office_users"), 1000, 32, 32)


def test_short_training_beats_popularity(tmp_path, office_users):
    from tf_ccfrec import ranking
    from tf_ccfrec.training import evaluation, inputs

    prepared, codes = office_users
    config = ModelConfig(dim=32, ffn_dim=64, fusion_layers=1, sequence_layers=1, dropout=0.1)
    result = train.train(prepared, codes, str(tmp_path / "run"), "ccfrec", config,
                         train.TrainConfig(batch_size=128, learning_rate=3e-3, warmup_steps=20,
                                           max_epochs=8, patience=8), verbose=0)
    item_ids = artifact.load(codes).item_ids
    counts = ranking.training_interactions(prepared, item_ids)
    popular = evaluation.popularity_metrics(
        counts, inputs.make_dataset(prepared, "test", item_ids, 256))
    print("ccfrec", result["test"], "popularity", popular)
    assert popular["examples"] == result["test"]["examples"] == 1000
    assert result["test"]["ndcg@10"] > 1.2 * popular["ndcg@10"]
    assert result["test"]["recall@10"] > popular["recall@10"]


def test_cold_and_warm_targets_are_reported(tmp_path, office_slice):
    """A run on data with cold items reports warm- and cold-target metrics that split the
    examples."""
    from tf_ccfrec.data import prepare

    prepared, codes = office_slice
    raw = os.path.join(os.path.dirname(prepared), "raw")
    cold_prepared = str(tmp_path / "cold")
    prepare.prepare("lcrec", raw, cold_prepared, cold_fraction=0.2, cold_seed=0)
    result = train.train(cold_prepared, codes, str(tmp_path / "run"), "ccfrec", SMALL,
                         train.TrainConfig(batch_size=64, max_epochs=1, warmup_steps=5),
                         verbose=0)
    for split in ("valid", "test"):
        metrics = result[split]
        assert metrics["cold"]["examples"] + metrics["warm"]["examples"] == metrics["examples"]
        assert metrics["cold"]["examples"] > 0
        assert 0.0 <= metrics["cold"]["recall@10"] <= 1.0
    again = restore.evaluate_run(str(tmp_path / "run"), "test")
    assert again["cold"] == pytest.approx(result["test"]["cold"])


def test_warmup_schedule_scales_with_the_plateau_variable():
    import numpy as np
    import tensorflow as tf

    decays = tf.Variable(0, trainable=False, dtype=tf.int64)
    schedule = train.WarmupConstant(2e-3, 4, decays, 0.3)
    steps = np.arange(8)
    expected = 2e-3 * np.minimum(1.0, (steps + 1) / 4)
    np.testing.assert_allclose([float(schedule(s)) for s in steps], expected, rtol=1e-6)
    decays.assign(2)
    np.testing.assert_allclose([float(schedule(s)) for s in steps], 0.09 * expected, rtol=1e-6)


def test_plateau_decays_resume_a_stopped_run_and_scale_the_learning_rate(tmp_path, office_slice,
                                                                        capsys):
    """With a zero learning rate the validation metrics never change, so every epoch after the
    first is a plateau epoch: with patience 1 the run stops after epoch 2; raised plateau decays
    resume it, each decay scaling the learning rate and granting one more epoch."""
    prepared, codes = office_slice
    run = str(tmp_path / "run")
    frozen = dict(batch_size=64, max_epochs=10, warmup_steps=5, patience=1, learning_rate=0.0)
    stopped = train.train(prepared, codes, run, "ccfrec", SMALL, train.TrainConfig(**frozen),
                          verbose=0)
    assert stopped["epochs"] == 2 and stopped["plateau_decays_done"] == 0
    assert "early stop: 1 epochs" in capsys.readouterr().out
    resumed = train.train(prepared, codes, run, "ccfrec", SMALL,
                          train.TrainConfig(**frozen, plateau_decays=2, plateau_decay_factor=0.5),
                          verbose=0)
    out = capsys.readouterr().out
    assert resumed["epochs"] == 4 and resumed["plateau_decays_done"] == 2
    assert "learning rate x0.5 (decay 1 of 2)" in out and "x0.25 (decay 2 of 2)" in out
    assert out.count("early stop") == 1
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["learning_rate_scale"] for h in history] == [1.0, 1.0, 0.5, 0.25]
    assert resumed["test"]["ndcg@10"] == pytest.approx(stopped["test"]["ndcg@10"], abs=1e-6)
    # A finished run resumed with the same settings trains nothing more.
    again = train.train(prepared, codes, run, "ccfrec", SMALL,
                        train.TrainConfig(**frozen, plateau_decays=2, plateau_decay_factor=0.5),
                        verbose=0)
    assert again["epochs"] == 4 and again["plateau_decays_done"] == 2


def test_plateau_decay_settings_are_checked():
    with pytest.raises(ValueError, match="plateau_decay_factor"):
        train.TrainConfig(plateau_decay_factor=1.0)
    with pytest.raises(ValueError, match="plateau_decays"):
        train.TrainConfig(plateau_decays=-1)
