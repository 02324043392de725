"""bench/scale.py: its synthetic data follows the real distributions it is drawn from, and a run at
20,000 items goes through every stage with the real code (prepare, codes with the real encoder
on a sample, sampled-softmax training, full-ranking evaluation, export, ScaNN, `ccfrec serve`),
one JSON line a stage, so the benchmark keeps working."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO

sys.path.insert(0, os.path.join(REPO, "bench"))
import scale  # noqa: E402


def test_synthetic_sequences_follow_the_source_distributions():
    rng = np.random.default_rng(1)
    lengths = rng.integers(5, 30, 500)
    counts = np.concatenate([np.full(900, 2), np.full(100, 200)])   # a heavy head
    sequences = scale.synthetic_sequences(lengths, counts, 5000, 4000, seed=0)
    assert len(sequences) == 4000
    drawn = np.array([len(s) for s in sequences.values()])
    assert set(drawn) <= set(lengths)
    assert abs(drawn.mean() - lengths.mean()) < 0.5
    items = np.concatenate([s for s in sequences.values()])
    assert items.min() >= 0 and items.max() < 5000
    per_item = np.sort(np.bincount(items, minlength=5000))[::-1]
    # About 10% of the items carry weight 200 against 2: the top 10% hold most draws.
    assert per_item[:500].sum() / per_item.sum() > 0.8
    assert sequences == scale.synthetic_sequences(lengths, counts, 5000, 4000, seed=0)


def test_synthetic_items_recombine_real_texts():
    texts = [{"title": f"brand{i} widget model {i}", "brand": f"B{i % 3}",
              "categories": f"Office, Cat{i % 2}", "description": "" if i % 2 else
              f"First {i}. Second {i}. Third {i}."} for i in range(20)]
    items = scale.synthetic_items(texts, 300, seed=0)
    assert list(items) == [str(i) for i in range(300)]
    assert {t["brand"] for t in items.values()} <= {"B0", "B1", "B2"}
    assert {t["categories"] for t in items.values()} == {"Office, Cat0", "Office, Cat1"}
    words = {w for t in texts for w in t["title"].split()}
    assert all(set(t["title"].split()) <= words for t in items.values())
    assert len({t["title"] for t in items.values()}) > 200
    empty = sum(not t["description"] for t in items.values()) / 300
    assert 0.35 < empty < 0.65
    sentences = {s for t in texts for s in scale._sentences(t["description"])}
    assert all(set(scale._sentences(t["description"])) <= sentences for t in items.values())


def test_projected_embeddings_are_keyed_by_text():
    sample = np.random.default_rng(0).standard_normal((50, 16)).astype(np.float32)
    keys = ["%024x" % (i * 7919 + 13) for i in range(100)]
    vectors = scale.projected_embeddings(sample, keys, 16)
    assert vectors.shape == (100, 16)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    again = scale.projected_embeddings(sample, keys[::-1], 16)[::-1]
    np.testing.assert_array_equal(vectors, again)
    assert len({v.tobytes() for v in vectors}) == 100


@pytest.mark.slow
def test_every_stage_at_20000_items(tmp_path):
    work = tmp_path / "work"
    output = tmp_path / "lines.jsonl"
    run = subprocess.run(
        [sys.executable, os.path.join(REPO, "bench", "scale.py"), "--items", "20000",
         "--users", "3000", "--work", str(work), "--embeddings-sample", "200",
         "--warmup-steps", "1", "--train-steps", "2", "--eval-users", "1000",
         "--scann-queries", "200", "--requests", "30", "--output", str(output)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=1500)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [line["stage"] for line in lines] == list(scale.STAGES)
    assert output.read_text().splitlines() == run.stdout.splitlines()
    by_stage = {line["stage"]: line for line in lines}
    for line in lines:
        assert line["items"] == 20000 and line["users"] == 3000
        assert line["seconds"] > 0 and 0 < line["peak_rss_gib"] < 12
    interactions = by_stage["prepare"]["interactions"]
    examples = by_stage["prepare"]["examples"]
    # Leave-one-out: one valid and one test example a user, the rest train.
    assert examples["valid"] == examples["test"] == 3000
    assert examples["train"] == interactions - 3 * 3000
    codes = by_stage["codes"]
    assert codes["encoded_texts"] == 200
    assert codes["encoded_texts"] + codes["projected_texts"] == codes["distinct_texts"]
    assert codes["texts_per_second"] > 0
    assert codes["usage"]["unique_code_tuples"] > 0.95 * 20000
    assert by_stage["train"]["loss"] == "sampled" and by_stage["train"]["timed_steps"] == 2
    assert by_stage["train"]["examples_per_second"] > 0
    assert np.isfinite(by_stage["train"]["final_loss"])
    assert by_stage["evaluate"]["users_evaluated"] == 1000
    assert by_stage["evaluate"]["ms_per_user"] > 0
    assert by_stage["scann"]["queries"] == 200
    assert 0.5 <= by_stage["scann"]["recall@10"] <= 1.0
    serve = by_stage["serve"]
    for search in ("exact", "scann"):
        assert 0 < serve[search]["p50_ms"] <= serve[search]["p99_ms"]
        assert serve[search]["requests"] == 27
    assert serve["server_peak_rss_gib"] > 0
    assert not work.exists()   # removed without --keep
