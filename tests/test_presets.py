"""Presets and their overrides; bad names fail early with a message that names them."""

import dataclasses
import os
import subprocess

import numpy as np
import pytest

from tests.conftest import REPO
from tf_ccfrec.models.ccfrec import CCFRecModel
from tf_ccfrec.models.config import ModelConfig
from tf_ccfrec.training import presets
from tf_ccfrec.training.train import TrainConfig


def test_paper_preset_is_the_defaults():
    assert presets.configs("paper") == (ModelConfig(), TrainConfig())


def test_dataset_preset_and_overrides():
    model, training = presets.configs("beauty", {"dropout": 0.3}, {"batch_size": 128})
    assert model.loss == "sampled" and model.num_negatives == 1024 and model.dropout == 0.3
    assert training.batch_size == 128 and training.steps_per_epoch == 80
    assert training.learning_rate == 2e-3
    assert ModelConfig().recompute and not model.recompute  # memory vs speed


@pytest.mark.parametrize("flag,expected", [("--recompute", True), ("--no-recompute", False),
                                           (None, False)])
def test_recompute_option_overrides_the_preset(flag, expected):
    from tf_ccfrec import cli
    from tf_ccfrec.training import options

    argv = ["train", "--preset", "beauty", "--data", "d", "--codes", "c", "--output", "o"]
    args = cli.build_parser().parse_args(argv + ([flag] if flag else []))
    model_overrides, train_overrides = options.training_overrides(args)
    assert presets.configs("beauty", model_overrides, train_overrides)[0].recompute is expected


@pytest.mark.parametrize("preset,flag,value,field,expected,default", [
    ("yelp", "--msa-warmup-steps", "320", "msa_warmup_steps", 320, 0),  # paper: MSA from start
    ("beauty", "--history-negative-weight", "10", "history_negative_weight", 10.0, 0.0),
    ("beauty", "--item-id-buckets", "4096", "item_id_buckets", 4096, 0),  # paper: no ID table
    ("yelp", "--item-id-buckets", "0", "item_id_buckets", 0, 262144),  # plain CCFRec on Yelp
])
def test_model_option_reaches_the_model_config(preset, flag, value, field, expected, default):
    from tf_ccfrec import cli
    from tf_ccfrec.training import options

    argv = ["train", "--preset", preset, "--data", "d", "--codes", "c", "--output", "o"]
    args = cli.build_parser().parse_args(argv + [flag, value])
    model, _ = presets.configs(preset, *options.training_overrides(args))
    assert getattr(model, field) == expected and model.msa_weight == 0.5
    assert getattr(presets.configs(preset)[0], field) == default


def test_precision_option_reaches_the_model_config():
    from tf_ccfrec import cli
    from tf_ccfrec.training import options

    argv = ["train", "--preset", "beauty", "--data", "d", "--codes", "c", "--output", "o"]
    args = cli.build_parser().parse_args(argv + ["--precision", "mixed_bfloat16"])
    assert presets.configs("beauty", *options.training_overrides(args))[0].precision == \
        "mixed_bfloat16"
    assert presets.configs("beauty")[0].precision == "float32"
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(argv + ["--precision", "float16"])


@pytest.mark.parametrize("args,message", [
    (("nope",), "unknown preset 'nope'"),
    (("paper", {"dimension": 3}), "unknown ModelConfig fields: dimension"),
    (("paper", None, {"strategy": "tpu"}), "strategy must be one of"),
    (("paper", {"precision": "float16"}), "precision must be one of"),
])
def test_bad_presets_and_fields(args, message):
    with pytest.raises(ValueError, match=message):
        presets.configs(*args)


def test_cli_reports_a_bad_strategy_before_training(tmp_path):
    result = subprocess.run(
        [os.path.join(REPO, "bin", "ccfrec"), "train", "--data", str(tmp_path), "--codes",
         str(tmp_path), "--output", str(tmp_path / "run"), "--strategy", "tpu"],
        capture_output=True, text=True)
    assert result.returncode == 2
    assert "strategy must be one of auto, default, mirrored, multi-worker" in result.stderr
    assert not (tmp_path / "run").exists()


def test_ffn_inner_dropout_option_reaches_the_model_and_its_layers():
    from tf_ccfrec import cli
    from tf_ccfrec.training import options

    argv = ["train", "--preset", "beauty", "--data", "d", "--codes", "c", "--output", "o"]
    args = cli.build_parser().parse_args(argv + ["--ffn-inner-dropout"])
    model, _ = presets.configs("beauty", *options.training_overrides(args))
    assert model.ffn_inner_dropout and not presets.configs("beauty")[0].ffn_inner_dropout
    rng = np.random.default_rng(0)
    ccfrec = CCFRecModel(dataclasses.replace(model, dim=16, ffn_dim=32),
                         rng.integers(0, 4, (10, 3)),
                         rng.standard_normal((10, 2, 16)).astype(np.float32), codebook_size=4)
    assert ccfrec.fusion.inner_dropout and ccfrec.encoder.inner_dropout
    assert all(block.inner_dropout for block in ccfrec.fusion.blocks + ccfrec.encoder.blocks)


def test_dataset_presets_give_sasrec_its_tuned_setting():
    # Office's is the published setting with two plateau decays; its CCFRec has one.
    office_model, office_train = presets.configs("office", model_name="sasrec")
    ss_model, ss_train = presets.configs("sasrec-ss")
    assert office_model == ss_model
    assert office_train == dataclasses.replace(ss_train, plateau_decays=2)
    assert presets.configs("office")[1].plateau_decays == 1
    assert presets.configs("sasrec-ss")[1].plateau_decays == 0
    # On Beauty the dataset preset, the sampled softmax with two plateau decays, is the
    # stronger SASRec, and CCFRec's setting too.
    beauty_model, beauty_train = presets.configs("beauty", model_name="sasrec")
    assert (beauty_model, beauty_train) == presets.configs("beauty")
    assert beauty_model.loss == "sampled" and beauty_train.plateau_decays == 2
    # Yelp's SASRec is Beauty's (it beat the published setting on Yelp as well).
    assert presets.configs("yelp", model_name="sasrec") == (beauty_model, beauty_train)
    for dataset in ("beauty", "office", "yelp"):
        assert presets.configs(dataset, model_name="ccfrec") == presets.configs(dataset)
    # Yelp's CCFRec is the item-ID variant at lr 1e-3 with two plateau decays; its SASRec
    # has no hashed-ID table of its own.
    yelp_model, yelp_train = presets.configs("yelp")
    assert yelp_model == dataclasses.replace(presets.configs("beauty")[0], item_id_buckets=262144)
    assert yelp_train == dataclasses.replace(beauty_train, learning_rate=1e-3)
    assert presets.configs("yelp", model_name="sasrec")[0].item_id_buckets == 0
    model, _ = presets.configs("office", {"dropout": 0.3}, model_name="sasrec")
    assert model.dropout == 0.3 and model.objective == "all_positions"
