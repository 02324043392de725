"""Training under tf.distribute: a 2-replica MirroredStrategy over two logical CPU devices gives
the loss and the update of one replica on the same global batch; MSA negatives and the MCM
normalizer span both replicas."""

import json
import os
import subprocess
import sys

import pytest

from tf_ccfrec import distribute

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def comparison():
    out = subprocess.run([sys.executable, os.path.join(HERE, "two_replicas.py")], check=True,
                         capture_output=True, text=True, cwd=os.path.dirname(HERE))
    return json.loads(out.stdout)


def test_two_replicas_give_the_single_replica_loss(comparison):
    assert comparison["replicas"] == 2
    assert comparison["loss_2"] == pytest.approx(comparison["loss_1"], rel=1e-5)


def test_two_replicas_give_the_single_replica_update(comparison):
    assert comparison["max_weight_change"] > 1e-3
    assert comparison["max_weight_difference"] < 1e-3 * comparison["max_weight_change"]


def test_masked_objectives_span_the_replicas(comparison):
    assert comparison["msa_1"] > 0.1 and comparison["mcm_1"] > 0.1
    assert comparison["msa_2"] == pytest.approx(comparison["msa_1"], rel=1e-5)
    assert comparison["mcm_2"] == pytest.approx(comparison["mcm_1"], rel=1e-5)


def test_strategy_choice(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.make_strategy("auto").num_replicas_in_sync == 1
    with pytest.raises(ValueError, match="strategy must be one of"):
        distribute.make_strategy("tpu")
