"""Collects training runs into the tables and plots of docs/results.md.

Usage (inside the environment):
    bin/env-run python bench/results.py --runs out/runs --plots docs/results

Each run directory is `<dataset>-<label>` (e.g. `beauty-ccfrec`, `office-sasrec`) written by
`ccfrec train --output`. Prints one Markdown table per dataset (test split: full ranking,
sampled protocol, head/tail Recall@10, epochs, training minutes, examples/s, peak RSS) and writes
`<plots>/<dataset>.png` with the validation curves. Each table ends with the popularity
baseline (full ranking only) on the dataset the runs were trained on.
"""

import argparse
import collections
import json
import os

from tf_ccfrec.training.curves import plot_curves


def popularity_row(run_directory):
    """The popularity baseline's test-split row for the data `run_directory` trained on."""
    from tf_ccfrec import ranking
    from tf_ccfrec.models.run_directory import ITEM_ORDER
    from tf_ccfrec.training import evaluation, inputs

    with open(os.path.join(run_directory, "config.json")) as f:
        config = json.load(f)
    with open(os.path.join(run_directory, ITEM_ORDER)) as f:
        item_ids = f.read().splitlines()
    counts = ranking.training_interactions(config["prepared"], item_ids)
    t = evaluation.popularity_metrics(
        counts, inputs.make_dataset(config["prepared"], "test", item_ids, 1024))
    return (f"| popularity | {t['recall@5']:.4f} | {t['ndcg@5']:.4f} | {t['recall@10']:.4f} | "
            f"{t['ndcg@10']:.4f} |" + " - |" * 8)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", default="out/runs")
    parser.add_argument("--plots", default="docs/results")
    args = parser.parse_args()
    datasets = collections.defaultdict(dict)
    for name in sorted(os.listdir(args.runs)):
        directory = os.path.join(args.runs, name)
        if os.path.exists(os.path.join(directory, "metrics.json")):
            dataset, _, label = name.partition("-")
            datasets[dataset][label] = directory
    os.makedirs(args.plots, exist_ok=True)
    for dataset, runs in datasets.items():
        print(f"\n### {dataset}\n")
        print("| model | R@5 | N@5 | R@10 | N@10 | sampled HR@10 | sampled N@10 | head R@10 | "
              "tail R@10 | steps x batch | train min | examples/s | peak GiB |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for label, directory in runs.items():
            with open(os.path.join(directory, "metrics.json")) as f:
                m = json.load(f)
            with open(os.path.join(directory, "config.json")) as f:
                c = json.load(f)["train_config"]
            t = m["test"]
            steps = (f"{m['epochs']} x {c['steps_per_epoch']} x {c['batch_size']}"
                     if c.get("steps_per_epoch") else f"{m['epochs']} epochs x {c['batch_size']}")
            print(f"| {label} | {t['recall@5']:.4f} | {t['ndcg@5']:.4f} | {t['recall@10']:.4f} | "
                  f"{t['ndcg@10']:.4f} | {t.get('sampled_hr@10', float('nan')):.4f} | "
                  f"{t.get('sampled_ndcg@10', float('nan')):.4f} | "
                  f"{t['head']['recall@10']:.4f} | {t['tail']['recall@10']:.4f} | {steps} | "
                  f"{m['train_seconds'] / 60:.1f} | {m.get('train_examples_per_second', 0):.1f} | "
                  f"{m['peak_rss_gib'] if 'peak_rss_gib' in m else '-'} |")
        print(popularity_row(directory))
        plot_curves(runs, os.path.join(args.plots, f"{dataset}.png"), title=dataset)


if __name__ == "__main__":
    main()
