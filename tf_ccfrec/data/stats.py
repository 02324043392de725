"""Dataset statistics, as printed by `ccfrec data stats` and written as JSON."""

from __future__ import annotations

import statistics
from typing import Any, Dict

from tf_ccfrec.data.dataset import SequenceDataset


def dataset_statistics(data: SequenceDataset) -> Dict[str, Any]:
    """Counts of users, items, interactions, sequence lengths and non-empty text per view."""
    lengths = [len(seq) for seq in data.sequences.values()]
    return {
        "dataset": data.name,
        "users": len(data.sequences),
        "items": len(data.items),
        "interactions": sum(lengths),
        "items_interacted": len({i for seq in data.sequences.values() for i in seq}),
        "sequence_length": {
            "min": min(lengths) if lengths else 0,
            "median": statistics.median(lengths) if lengths else 0,
            "mean": round(statistics.fmean(lengths), 2) if lengths else 0.0,
            "max": max(lengths) if lengths else 0,
        },
        "items_with_text": {
            view: sum(1 for text in data.items.values() if text[view].strip())
            for view in data.views
        },
    }


def format_statistics(stats: Dict[str, Any]) -> str:
    """A short human-readable table of `dataset_statistics` output."""
    seq = stats["sequence_length"]
    lines = [
        f"dataset       {stats['dataset']}",
        f"users         {stats['users']:,}",
        f"items         {stats['items']:,}",
        f"interactions  {stats['interactions']:,}",
        f"sequence len  min {seq['min']} / median {seq['median']} / mean {seq['mean']} / "
        f"max {seq['max']}",
        "items with text  " + ", ".join(
            f"{view} {count:,}" for view, count in stats["items_with_text"].items()),
    ]
    return "\n".join(lines)


def format_split_statistics(stats: Dict[str, Any]) -> str:
    """Examples per split and what was skipped, from `ccfrec data prepare`'s statistics."""
    examples = stats["examples"]
    lines = [f"examples      train {examples['train']:,} / valid {examples['valid']:,} / "
             f"test {examples['test']:,} ({stats['split']}, history <= {stats['max_history']})"]
    skipped = stats.get("problems", {}).get("skipped", {})
    if skipped:
        lines.append("skipped       " + ", ".join(f"{k} {v:,}" for k, v in skipped.items()))
    return "\n".join(lines)
