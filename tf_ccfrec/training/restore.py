"""Evaluating a trained run (`ccfrec train --output DIR`) again: `ccfrec evaluate`."""

from __future__ import annotations

from typing import Any, Dict, Optional

from tf_ccfrec.models.run_directory import load_run, ranks_file


def evaluate_run(model_dir: str, split: str = "test", data_dir: Optional[str] = None,
                 codes_dir: Optional[str] = None, sampled_negatives: int = 100,
                 exclude_history: bool = False,
                 sampled_protocol: Optional[str] = None,
                 write_ranks: bool = False) -> Dict[str, Any]:
    """The metrics `train` reports for a split (same seed, so the same sampled negatives;
    `sampled_protocol` default: the run's, "uniform" for runs from before the option).
    `write_ranks`: also (re)write the split's per-example ranks, `<model_dir>/<split>_ranks.npz`
    (`<split>_ranks_excluding_history.npz` with `exclude_history`), what
    `significance.paired_test` compares."""
    from tf_ccfrec import ranking
    from tf_ccfrec.training import evaluation, inputs

    model, run = load_run(model_dir, codes_dir)
    prepared = data_dir or run["prepared"]
    data = inputs.make_dataset(prepared, split, run["item_ids"], 1024, model.config.max_history)
    head = ranking.head_items(ranking.training_interactions(prepared, run["item_ids"]))
    metrics = evaluation.evaluate(
        model, data, exclude_history=exclude_history, sampled_negatives=sampled_negatives,
        head=head, seed=run["train_config"]["seed"],
        sampled_protocol=sampled_protocol or run["train_config"].get("sampled_protocol",
                                                                     "uniform"),
        cold=evaluation.cold_items(prepared, run["item_ids"]), with_ranks=True)
    ranks = metrics.pop("ranks")
    if write_ranks:
        from tf_ccfrec import storage

        storage.save_npz(storage.join(model_dir, ranks_file(split, exclude_history)),
                         ranks=ranks)
    return {"model": run["model"], "split": split, **metrics}
