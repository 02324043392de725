"""The headline tables of docs/results.md from the committed runs' small files.

Usage: bin/env-run python bench/headline.py [--runs docs/results/runs]

Each run directory is `<dataset>-<model>-seed<k>` (`bench/run_results.sh` copies config.json,
history.json and metrics.json there); `metrics.json` holds the test metrics under "test". Prints
one Markdown table per dataset: the published anchors, then per model the mean and standard
deviation (n - 1) over its seeds of test Recall@10 / NDCG@10 (full ranking), the same with the
user's history items left out of the ranking (the published numbers' protocol; metrics.json's
"test_excluding_history", "-" for runs without it, the mean of those that have it where some
runs of a row do, with their count), the seeds' count and the command that
reproduces the row; then CCFRec's change against the tuned SASRec under each protocol. A row
whose runs used the item-ID variant (config.json's `item_id_buckets`) says so in its label.
"""

import argparse
import collections
import json
import os
import re
import statistics

PUBLISHED = {
    "beauty": [("SASRec with sampled softmax (eSASRec paper, arXiv 2508.06450)", 0.0921, 0.0531),
               ("eSASRec (arXiv 2508.06450)", 0.0928, 0.0523)],
    "yelp": [("MCLRec (SIGIR 2023, arXiv 2304.07763)", 0.0647, 0.0394)],
    "office": [],
}
NAME = re.compile(r"^(?P<dataset>beauty|office|yelp)-(?P<model>[a-z0-9-]+)-seed(?P<seed>\d+)$")


def collect(root):
    """{dataset: {model: [one dict a seed]}}: "ranked" (test metrics with history items in the
    ranking) and "filtered" (with them left out), each None where the run has none, and
    "item_id_buckets" (config.json's; 0 without one). A run trained with `--exclude-history`
    holds the filtered protocol's metrics under "test"."""
    runs = collections.defaultdict(lambda: collections.defaultdict(list))
    for name in sorted(os.listdir(root)):
        match = NAME.match(name)
        path = os.path.join(root, name, "metrics.json")
        if match and os.path.exists(path):
            with open(path) as f:
                metrics = json.load(f)
            config_path = os.path.join(root, name, "config.json")
            config = {}
            if os.path.exists(config_path):
                with open(config_path) as f:
                    config = json.load(f)
            if config.get("train_config", {}).get("exclude_history"):
                ranked, filtered = None, metrics["test"]
            else:
                ranked, filtered = metrics["test"], metrics.get("test_excluding_history")
            runs[match["dataset"]][match["model"]].append(
                {"ranked": ranked, "filtered": filtered,
                 "item_id_buckets": config.get("model_config", {}).get("item_id_buckets", 0)})
    return runs


def cell(values):
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def seeds_note(present, seeds):
    """" (k of n seeds)" where only some of a row's runs report a protocol (runs from before
    the filtered protocol was reported), "" where all or none do."""
    return f" ({present} of {seeds} seeds)" if 0 < present < seeds else ""


# How each model's rows are named and reproduced; models not listed print under their own name.
LABELS = {
    "sasrec": ("SASRec, tuned (`--preset {d} --model sasrec`)", "`bench/run_results.sh {d}`"),
    "ccfrec": ("CCFRec (`--preset {d}`)", "`bench/run_results.sh {d}`"),
    "sasrec-ss": ("SASRec, the published setting (`--preset sasrec-ss`)",
                  "the published setting's command, below"),
    "sasrec-first-stop": ("SASRec, tuned, at its first stop (no plateau decays)",
                          "the SASRec row's runs before their decays"),
    "ccfrec-first-stop": ("CCFRec, at its first stop (no plateau decays)",
                          "the CCFRec row's runs before their decays"),
    "sasrec-ss-filtered": ("SASRec, the published setting, selected and stopped with history "
                           "items filtered (`--exclude-history`)",
                           "the published setting's command, below, with `--exclude-history`"),
}
ORDER = ("sasrec-ss", "sasrec-ss-filtered", "sasrec-first-stop", "sasrec", "ccfrec-first-stop",
         "ccfrec")


def table(dataset, models):
    lines = [f"### {dataset.capitalize()}", "",
             "| model | R@10 | N@10 | R@10, history filtered | N@10, history filtered | seeds "
             "| command |", "|---|---|---|---|---|---|---|"]
    for label, recall, ndcg in PUBLISHED[dataset]:
        lines.append(f"| published: {label} | - | - | {recall:.4f} | {ndcg:.4f} | - | - |")
    for model in sorted(models, key=lambda m: (ORDER.index(m) if m in ORDER else len(ORDER), m)):
        metrics = models[model]
        label, command = LABELS.get(model, (model, "-"))
        buckets = sorted({m["item_id_buckets"] for m in metrics})
        if buckets != [0]:
            label += f", item IDs (`--item-id-buckets {'/'.join(map(str, buckets))}`)"
        cells = []
        for protocol in ("ranked", "filtered"):
            reported = [m[protocol] for m in metrics if m[protocol]]
            note = seeds_note(len(reported), len(metrics))
            cells += [cell([r[key] for r in reported]) + note for key in ("recall@10", "ndcg@10")]
        lines.append(f"| {label.format(d=dataset)} | {' | '.join(cells)} | {len(metrics)} | "
                     f"{command.format(d=dataset)} |")
    if models.get("ccfrec") and models.get("sasrec"):
        for protocol, words in (("ranked", ""), ("filtered", ", history items filtered")):
            if not all(m[protocol] for m in models["ccfrec"] + models["sasrec"]):
                continue
            change = {key: statistics.mean(m[protocol][key] for m in models["ccfrec"])
                      / statistics.mean(m[protocol][key] for m in models["sasrec"]) - 1
                      for key in ("recall@10", "ndcg@10")}
            lines += ["", f"CCFRec against the tuned SASRec (means{words}): Recall@10 "
                          f"{change['recall@10']:+.1%}, NDCG@10 {change['ndcg@10']:+.1%}."]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="docs/results/runs")
    args = parser.parse_args(argv)
    runs = collect(args.runs)
    print("\n\n".join(table(d, runs.get(d, {})) for d in ("beauty", "yelp", "office")))


if __name__ == "__main__":
    main()
