"""Leave-one-out and official splits, and the examples built from them."""

import collections

import pytest

from tests import data_files
from tf_ccfrec.data import filtering, readers, splits
from tf_ccfrec.data.dataset import SequenceDataset


def _data(sequences, split=None):
    items = {i: {"title": i} for s in sequences.values() for i in s}
    return SequenceDataset("t", sequences, items, ["title"], "/", splits=split)


def test_leave_one_out_roles_and_examples():
    data = _data({"u": ["a", "b", "c", "d", "e"], "short": ["x", "y"], "one": ["z"]})
    assert splits.roles(data, "u") == ["train", "train", "train", "valid", "test"]
    assert splits.roles(data, "short") == ["train", "test"]
    assert splits.roles(data, "one") == ["train"]
    examples = splits.make_examples(data, max_history=2)
    assert [(e.history, e.target) for e in examples["train"]] == [(["a"], "b"), (["a", "b"], "c")]
    assert [(e.history, e.target) for e in examples["valid"]] == [(["b", "c"], "d")]
    assert [(e.user_id, e.history, e.target) for e in examples["test"]] == [
        ("u", ["c", "d"], "e"), ("short", ["x"], "y")]


def test_official_split_from_amazon2023(tmp_path):
    data = readers.read("amazon2023", data_files.amazon2023(tmp_path))
    examples = splits.make_examples(data)
    assert {(e.user_id, e.target) for e in examples["valid"]} == {("U1", "B3"), ("U2", "B2")}
    assert {(e.user_id, e.target) for e in examples["test"]} == {("U1", "B4"), ("U2", "B4")}
    test_u1 = next(e for e in examples["test"] if e.user_id == "U1")
    assert test_u1.history == ["B1", "B2", "B3"]  # the official history column
    assert [e.target for e in examples["train"] if e.user_id == "U1"] == ["B2"]


def test_invariants_on_office(office_dir):
    data = readers.read("lcrec", office_dir)
    examples = splits.make_examples(data, max_history=20)
    per_user = collections.defaultdict(dict)
    for split, rows in examples.items():
        for e in rows:
            sequence = data.sequences[e.user_id]
            # The target is at its position; the history is exactly what came before it.
            assert sequence[e.position] == e.target
            assert e.history == sequence[max(0, e.position - 20):e.position]
            assert 1 <= len(e.history) <= 20
            per_user[e.user_id].setdefault(split, []).append(e.position)
    for user, sequence in data.sequences.items():
        n = len(sequence)
        assert per_user[user]["test"] == [n - 1]
        assert per_user[user]["valid"] == [n - 2]
        assert per_user[user]["train"] == list(range(1, n - 2))
    assert len(examples["test"]) == len(examples["valid"]) == 4905
    assert len(examples["train"]) == 53258 - 3 * 4905  # every position but 0, n-2, n-1


def test_max_history_must_be_positive():
    with pytest.raises(ValueError, match="max_history"):
        splits.make_examples(_data({"u": ["a", "b"]}), max_history=0)


def test_k_core():
    data = _data({"u1": ["a", "b", "c"], "u2": ["a", "b"], "u3": ["a", "c", "d"]})
    core = filtering.k_core(data, 2)
    # d (1 interaction) goes; then u3 keeps a, c; c has 2, all users have >= 2.
    assert core.sequences == {"u1": ["a", "b", "c"], "u2": ["a", "b"], "u3": ["a", "c"]}
    assert set(core.items) == {"a", "b", "c"}
    assert filtering.k_core(data, 0) is data
    assert filtering.k_core(data, 3).sequences == {}


def test_cold_items_leave_every_training_interaction():
    data = _data({"u": ["a", "b", "c", "d", "e"], "v": ["c", "a", "b"], "w": ["b", "c", "d"]})
    examples = splits.make_examples(data, max_history=5, cold=["b"])
    assert [(e.history, e.target) for e in examples["train"]] == [(["a"], "c")]
    # Held-out targets stay, cold or not; histories lose the cold training interactions.
    assert [(e.user_id, e.history, e.target) for e in examples["valid"]] == [
        ("u", ["a", "c"], "d"), ("v", ["c"], "a")]
    assert [(e.user_id, e.history, e.target) for e in examples["test"]] == [
        ("u", ["a", "c", "d"], "e"), ("v", ["c", "a"], "b"), ("w", ["c"], "d")]
    assert splits.cold_items(list("abcdefghij"), 0.3, seed=1) == \
        splits.cold_items(list("jihgfedcba"), 0.3, seed=1)
    assert len(splits.cold_items(list("abcdefghij"), 0.3, seed=1)) == 3
    assert splits.cold_items(list("abcdefghij"), 0.3, seed=1) != \
        splits.cold_items(list("abcdefghij"), 0.3, seed=2)
    with pytest.raises(ValueError, match="must be in \\[0, 1\\)"):
        splits.cold_items(["a"], 1.0, seed=0)
