"""Validation Recall@10 / NDCG@10 of training runs side by side, epoch by epoch, as a Markdown
table (from each run's history.json, so it works on runs still training).

Usage:
    python3 bench/epoch_table.py [--epochs 1-12] LABEL=RUN_DIR [LABEL=RUN_DIR ...]

Each row is one run; each column an epoch that at least one run has reached ("-" where a run
has not); the best NDCG@10 of each run within the shown epochs is in bold.
"""

import argparse
import json
import os


def history(run_dir):
    """{epoch: (valid recall@10, valid ndcg@10)} of a run directory's history.json."""
    with open(os.path.join(run_dir, "history.json")) as f:
        return {h["epoch"]: (h["valid_recall@10"], h["valid_ndcg@10"]) for h in json.load(f)}


def table(runs, first=1, last=None):
    """Markdown lines for {label: {epoch: (recall, ndcg)}} over epochs first..last (default:
    the last epoch any run reached)."""
    last = last or max((max(h) for h in runs.values() if h), default=first)
    epochs = list(range(first, last + 1))
    lines = ["| run | " + " | ".join(str(e) for e in epochs) + " |",
             "|---|" + "---|" * len(epochs)]
    for label, epochs_of in runs.items():
        shown = [epochs_of[e][1] for e in epochs if e in epochs_of]
        cells = []
        for e in epochs:
            if e not in epochs_of:
                cells.append("-")
                continue
            recall, ndcg = epochs_of[e]
            cell = f"{recall:.4f} / {ndcg:.4f}"
            cells.append(f"**{cell}**" if ndcg == max(shown) else cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", default=None, help="FIRST-LAST, e.g. 1-12")
    parser.add_argument("runs", nargs="+", help="LABEL=RUN_DIR")
    args = parser.parse_args(argv)
    first, last = 1, None
    if args.epochs:
        first, last = (int(x) for x in args.epochs.split("-"))
    runs = {}
    for spec in args.runs:
        label, _, run_dir = spec.partition("=")
        runs[label] = history(run_dir)
    print("\n".join(table(runs, first, last)))


if __name__ == "__main__":
    main()
