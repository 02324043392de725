"""Tables and the cost-curve plot of docs/scale.md from `bench/scale.py --output` files.

Usage (inside the environment):
    bin/env-run python bench/scale_report.py docs/results/scale/*.jsonl [--plot docs/scale.png]

Prints two Markdown tables (seconds, then peak RSS in GiB: one row per stage, one column per
catalog size; a stage's last line counts), the per-size figures the targets name (training: the
median of every training line of that size, since `--stages train` reruns append lines), and
every training run; writes a log-log plot of seconds per
stage against the catalog size.
"""

import argparse
import json
import statistics


def read(paths):
    """({items: {stage: line}}, the last line of each stage and size;
    {items: [examples/s of every training line, in file order]})."""
    runs, training = {}, {}
    for path in paths:
        with open(path) as f:
            for text in f:
                if text.strip():
                    line = json.loads(text)
                    runs.setdefault(line["items"], {})[line["stage"]] = line
                    if line["stage"] == "train":
                        training.setdefault(line["items"], []).append(
                            line["examples_per_second"])
    return dict(sorted(runs.items())), dict(sorted(training.items()))


def training_table(training):
    """Every training measurement per size, their median, and the median against the
    smallest size's (the throughput target compares medians: single runs on a shared
    virtual machine vary)."""
    base = statistics.median(next(iter(training.values())))
    rows = ["| items | runs | examples/s, each run in order | median | median vs smallest |",
            "|---|---|---|---|---|"]
    for n, values in training.items():
        median = statistics.median(values)
        rows.append(f"| {n:,} | {len(values)} | {', '.join(f'{v:.1f}' for v in values)} "
                    f"| {median:.1f} | {median / base:.0%} |")
    return "\n".join(rows)


def table(runs, key, stages, digits):
    sizes = list(runs)
    rows = ["| stage | " + " | ".join(f"{n:,} items" for n in sizes) + " |",
            "|---|" + "---|" * len(sizes)]
    for stage in stages:
        cells = [runs[n].get(stage, {}).get(key) for n in sizes]
        rows.append(f"| {stage} | " + " | ".join(
            "-" if c is None else f"{c:,.{digits}f}" for c in cells) + " |")
    return "\n".join(rows)


def targets(runs, training):
    rows = ["| items | interactions | train ex/s | eval ms/user, steady (all) | export s | ScaNN build s | "
            "ScaNN recall@10 | REST p50 / p99 ms, exact | REST p50 / p99 ms, ScaNN |",
            "|---|---|---|---|---|---|---|---|---|"]
    for n, stages in runs.items():
        def get(stage, *keys):
            value = stages.get(stage, {})
            for key in keys:
                value = value.get(key, {}) if isinstance(value, dict) else {}
            return value if value != {} else None

        def fmt(value, digits=1):
            return "-" if value is None else f"{value:,.{digits}f}"

        serve = stages.get("serve", {})
        rows.append(
            f"| {n:,} | {fmt(get('prepare', 'interactions'), 0)} "
            f"| {fmt(statistics.median(training[n]) if n in training else None)} "
            f"| {evaluation(stages.get('evaluate', {}))} | {fmt(get('export', 'seconds'))} "
            f"| {fmt(get('scann', 'build_seconds'))} | {fmt(get('scann', 'recall@10'), 4)} "
            f"| {fmt(serve.get('exact', {}).get('p50_ms'), 2)} / "
            f"{fmt(serve.get('exact', {}).get('p99_ms'), 2)} "
            f"| {fmt(serve.get('scann', {}).get('p50_ms'), 2)} / "
            f"{fmt(serve.get('scann', {}).get('p99_ms'), 2)} |")
    return "\n".join(rows)


def evaluation(line) -> str:
    """Full-ranking ms per user: the steady batches' (no tracing, no compiling) with every
    second's in parentheses; lines from before `steady_ms_per_user` existed give the latter."""
    if "ms_per_user" not in line:
        return "-"
    if line.get("steady_ms_per_user") is None:
        return f"{line['ms_per_user']:.2f}"
    return f"{line['steady_ms_per_user']:.2f} ({line['ms_per_user']:.2f})"


def plot(runs, stages, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    sizes = list(runs)
    for stage in stages:
        points = [(n, runs[n][stage]) for n in sizes if stage in runs[n]]
        if len(points) < 2:
            continue
        xs = [n for n, _ in points]
        left.plot(xs, [line["seconds"] for _, line in points], marker="o", label=stage)
        right.plot(xs, [line["peak_rss_gib"] for _, line in points], marker="o", label=stage)
    for axis, label in ((left, "seconds"), (right, "peak RSS (GiB)")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("catalog items")
        axis.set_ylabel(label)
        axis.grid(True, which="both", alpha=0.3)
    right.axhline(12, color="grey", linestyle="--", linewidth=1)
    left.legend(fontsize=8)
    fig.suptitle("tf-ccfrec stage cost by catalog size (bench/scale.py, 2 cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+")
    parser.add_argument("--plot", help="write the plot here (PNG)")
    args = parser.parse_args()
    runs, training = read(args.files)
    stages = [s for s in ("generate", "prepare", "codes", "train", "evaluate", "export",
                          "scann", "serve") if any(s in r for r in runs.values())]
    print("Seconds per stage:\n")
    print(table(runs, "seconds", stages, 1))
    print("\nPeak RSS per stage (GiB):\n")
    print(table(runs, "peak_rss_gib", stages, 2))
    print("\nThe figures the targets name (train: the median of its runs):\n")
    print(targets(runs, training))
    print("\nTraining throughput, every run:\n")
    print(training_table(training))
    if args.plot:
        plot(runs, stages, args.plot)


if __name__ == "__main__":
    main()
