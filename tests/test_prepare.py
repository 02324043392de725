"""`ccfrec data prepare`: TFRecords that round-trip, deterministic bytes, atomic output."""

import json
import os
import subprocess

import pytest

from tests import data_files
from tests.conftest import REPO
from tf_ccfrec.storage import OutputExists
from tf_ccfrec.data import prepare, readers, splits, tfrecords
from tf_ccfrec.data.errors import DataError


def _files(directory):
    result = {}
    for root, _, names in os.walk(directory):
        for name in names:
            with open(os.path.join(root, name), "rb") as f:
                result[os.path.relpath(os.path.join(root, name), directory)] = f.read()
    return result


def test_prepare_office_round_trips_and_is_deterministic(tmp_path, office_dir):
    first = prepare.prepare("lcrec", office_dir, str(tmp_path / "a"))
    prepare.prepare("lcrec", office_dir, str(tmp_path / "b"))
    files = _files(tmp_path / "a")
    assert sorted(files) == ["_COMPLETE.json", "catalog/items-00000-of-00001.tfrecord.gz",
                             "examples/test/data-00000-of-00001.tfrecord.gz",
                             "examples/train/data-00000-of-00001.tfrecord.gz",
                             "examples/valid/data-00000-of-00001.tfrecord.gz",
                             "statistics.json"]
    second = _files(tmp_path / "b")
    written = ("statistics.json", "_COMPLETE.json")  # statistics.json's size may differ
    assert {k: v for k, v in files.items() if k not in written} == \
        {k: v for k, v in second.items() if k not in written}
    assert first["examples"] == {"train": 38543, "valid": 4905, "test": 4905}
    assert json.loads(files["statistics.json"])["examples"] == first["examples"]

    data = readers.read("lcrec", office_dir)
    expected = splits.make_examples(data)
    assert tfrecords.read_examples(str(tmp_path / "a"), "test") == expected["test"]
    assert tfrecords.read_examples(str(tmp_path / "a"), "train")[:50] == expected["train"][:50]
    order, items = tfrecords.read_catalog(str(tmp_path / "a"), first["views"])
    assert order == list(data.items)
    assert items == data.items


def test_catalog_carries_numeric_fields(tmp_path):
    import tensorflow as tf

    out = tmp_path / "out"
    prepare.prepare("p5", data_files.p5_recbole(tmp_path / "in"), str(out))
    record = next(iter(tf.data.TFRecordDataset(
        str(out / "catalog" / tfrecords.CATALOG_SHARD), compression_type="GZIP")))
    feature = tf.train.Example.FromString(record.numpy()).features.feature
    assert feature["num_price"].float_list.value[0] == pytest.approx(5.5)
    assert feature["text_title"].bytes_list.value[0] == b"Pen & Ink Set"


def test_failure_leaves_no_output_and_keeps_the_old(tmp_path):
    bad = data_files.lcrec(tmp_path / "bad", {"0": [0, 7]}, {"0": {"title": "x"}})
    out = tmp_path / "out"
    with pytest.raises(DataError):
        prepare.prepare("lcrec", bad, str(out))
    assert os.listdir(tmp_path) == ["bad"] or sorted(os.listdir(tmp_path)) == ["bad"]
    good = data_files.lcrec(tmp_path / "good", {"0": [0, 0, 0]}, {"0": {"title": "x"}})
    prepare.prepare("lcrec", good, str(out))
    before = _files(out)
    with pytest.raises(OutputExists, match="pass --overwrite"):
        prepare.prepare("lcrec", good, str(out))
    with pytest.raises(DataError):
        prepare.prepare("lcrec", bad, str(out), overwrite=True)
    assert _files(out) == before
    assert sorted(os.listdir(tmp_path)) == ["bad", "good", "out"]


def test_cli_prepare_and_skip(tmp_path):
    bad = data_files.lcrec(tmp_path / "in", {"0": [0, 7, 0], "1": [0, 0]}, {"0": {"title": "x"}})
    out = tmp_path / "out"
    command = [os.path.join(REPO, "bin", "ccfrec"), "data", "prepare", "--format", "lcrec",
               "--input", bad, "--output", str(out)]
    failed = subprocess.run(command, capture_output=True, text=True)
    assert failed.returncode == 2
    assert "Toy.inter.json: user '0', position 1: item 7 is not in the item catalog" in \
        failed.stderr
    assert not out.exists()
    done = subprocess.run(command + ["--on-error", "skip"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "skipped       unknown_item 1" in done.stdout
    assert "examples      train 0 / valid 0 / test 2" in done.stdout
    statistics = json.loads((out / "statistics.json").read_text())
    assert statistics["problems"]["skipped"] == {"unknown_item": 1}


def test_cold_items_are_out_of_training_and_listed(tmp_path, office_dir):
    """--cold-items 0.1: a tenth of Office's items never appears in a training example, is
    listed in cold_items.txt, and is still a valid/test target."""
    result = subprocess.run(
        [os.path.join(REPO, "bin", "ccfrec"), "data", "prepare", "--format", "lcrec", "--input",
         office_dir, "--output", str(tmp_path / "cold"), "--cold-items", "0.1", "--seed", "3"],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    statistics = prepare.load_statistics(str(tmp_path / "cold"))
    cold = set(prepare.load_cold_items(str(tmp_path / "cold")))
    order, _ = tfrecords.read_catalog(str(tmp_path / "cold"), statistics["views"])
    assert statistics["cold_items"] == {"fraction": 0.1, "seed": 3, "count": len(cold)}
    assert len(cold) == round(0.1 * len(order)) and cold <= set(order)
    for example in tfrecords.read_examples(str(tmp_path / "cold"), "train"):
        assert example.target not in cold and not cold & set(example.history)
    test = tfrecords.read_examples(str(tmp_path / "cold"), "test")
    assert 0 < sum(e.target in cold for e in test) < len(test)
    assert len(test) == 4905  # every user keeps its test target
