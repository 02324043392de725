"""Training curves: validation NDCG@10 and Recall@10 against training time, one line per run,
drawn from the runs' `history.json` (written by `train`)."""

from __future__ import annotations

import io
from typing import Dict

from tf_ccfrec import storage


def plot_curves(runs: Dict[str, str], output_png: str, title: str = "") -> None:
    """Writes a PNG of validation NDCG@10 and Recall@10 per run against training minutes.

    Args:
      runs: {label: run directory with history.json}.
      output_png: the file to write (its directory must exist).
      title: the figure's title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for label, directory in runs.items():
        history = storage.read_json(storage.join(directory, "history.json"))
        minutes = [h["seconds"] / 60 for h in history]
        for axis, key in zip(axes, ("valid_ndcg@10", "valid_recall@10")):
            axis.plot(minutes, [h[key] for h in history], marker="o", markersize=3, label=label)
    for axis, name in zip(axes, ("validation NDCG@10", "validation Recall@10")):
        axis.set_xlabel("training minutes (2 CPU cores)")
        axis.set_ylabel(name)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    storage.write_bytes(output_png, buffer.getvalue())
    plt.close(figure)
