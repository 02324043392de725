"""The cold-start table and plot from `bench/cold_start.sh`'s results: one directory per dataset
(`out/cold/<dataset>/results/`, one JSON file per row as `ccfrec evaluate` / `ccfrec baseline`
print them).

    bin/env-run python bench/cold_start_table.py --output docs/results/cold_start.png \
        out/cold/office/results out/cold/beauty/results

Prints a markdown table per dataset (test split, full ranking; warm and cold targets) and the
targets' ratios, and draws cold-target and warm-target Recall@10 per model and dataset.
"""

import argparse
import json
import os

ROWS = (("ccfrec-cold", "CCFRec (cold split)"), ("sasrec-cold", "SASRec (cold split)"),
        ("text-knn", "text kNN (no training)"), ("popularity", "popularity"),
        ("ccfrec-full", "CCFRec, full data"))


# Output roots of bench/cold_start.sh: where the sampled loss drew its negatives.
VARIANTS = {"cold-trained": "negatives from trained items", "cold": "negatives from the catalog"}


def load(directory):
    return {name: json.load(open(os.path.join(directory, f"{name}.json")))
            for name, _ in ROWS if os.path.exists(os.path.join(directory, f"{name}.json"))}


def table(rows):
    lines = ["| model | all R@10 | all N@10 | warm R@10 | warm N@10 | cold R@10 | cold N@10 | "
             "cold sampled HR@10 |", "|---|---|---|---|---|---|---|---|"]
    for name, label in ROWS:
        if name not in rows:
            continue
        r = rows[name]
        cells = [r["recall@10"], r["ndcg@10"], r["warm"]["recall@10"], r["warm"]["ndcg@10"],
                 r["cold"]["recall@10"], r["cold"]["ndcg@10"], r["cold"]["sampled_hr@10"]]
        lines.append(f"| {label} | " + " | ".join(f"{c:.4f}" for c in cells) + " |")
    return "\n".join(lines)


def ratios(rows):
    cold = lambda n: rows[n]["cold"]["recall@10"]  # noqa: E731
    out = {"cold_vs_text_knn": cold("ccfrec-cold") / max(cold("text-knn"), 1e-12)}
    # None: SASRec ranks no cold target in its top 10 (any positive recall is more than 5x).
    out["cold_vs_sasrec"] = (cold("ccfrec-cold") / cold("sasrec-cold")
                             if cold("sasrec-cold") > 0 else None)
    for metric in ("recall@10", "ndcg@10"):
        out[f"warm_{metric}_vs_full"] = (rows["ccfrec-cold"]["warm"][metric]
                                         / rows["ccfrec-full"]["warm"][metric] - 1)
    return out


def plot(datasets, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n, _ in ROWS if n != "ccfrec-full"]
    labels = dict(ROWS)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    width = 0.8 / len(datasets)
    for a, (slice_name, title) in enumerate((("cold", "cold targets"),
                                             ("warm", "warm targets"))):
        axis = axes[a]
        for d, (dataset, rows) in enumerate(datasets.items()):
            values = [rows[n][slice_name]["recall@10"] if n in rows else 0 for n in names]
            positions = [i + (d - (len(datasets) - 1) / 2) * width for i in range(len(names))]
            axis.bar(positions, values, width, label=dataset)
        axis.set_xticks(range(len(names)))
        axis.set_xticklabels([labels[n].split(" (")[0] for n in names], fontsize=8)
        axis.set_title(f"test Recall@10, {title}")
        axis.legend(fontsize=8)
    fig.suptitle("Cold start: 10% of the items never trained on", fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("results", nargs="+", help="out/cold/<dataset>/results directories")
    parser.add_argument("--output", help="the plot's PNG file")
    args = parser.parse_args()
    datasets = {}
    for directory in args.results:
        # <root>/<dataset>/results: the dataset, with the root when it is not out/cold.
        dataset_dir = os.path.dirname(os.path.abspath(directory))
        dataset, root = os.path.basename(dataset_dir), os.path.basename(
            os.path.dirname(dataset_dir))
        dataset = f"{dataset}, {VARIANTS.get(root, root)}"
        rows = load(directory)
        datasets[dataset] = rows
        print(f"## {dataset}\n\n{table(rows)}\n")
        if all(n in rows for n, _ in ROWS):
            print(json.dumps({"dataset": dataset, **{
                k: None if v is None else round(v, 4) for k, v in ratios(rows).items()}}))
    if args.output:
        plot(datasets, args.output)
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
