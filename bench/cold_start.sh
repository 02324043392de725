#!/bin/sh
# Cold start: a seeded 10% of the catalog kept out of every training interaction, then CCFRec,
# SASRec (whose cold items keep their untrained id embeddings), the text-only nearest-neighbour
# recommender (no training) and popularity on the same test split, sliced by warm and cold
# targets; and CCFRec trained on the full data, evaluated on the same test examples, for the
# warm-target comparison.
#
# Usage: [TRAIN_FLAGS=...] [OUT=DIR] bench/cold_start.sh [BUDGET_MINUTES] [DATASET ...]
#   BUDGET_MINUTES  training budget of each run (default 7)
#   DATASET         office beauty (default office)
#   TRAIN_FLAGS     `ccfrec train` options of every run (default "--negatives-from trained":
#                   the sampled loss never draws a cold item as a negative, as a model trained
#                   before those items existed never could; "" draws from the whole catalog)
#   OUT             where the runs go (default out/cold-trained; out/cold for TRAIN_FLAGS="",
#                   whose prepared data and codes the other roots share when they exist)
# Writes $OUT/<dataset>/ with one JSON file per row under results/, then prints the table and
# draws $OUT/cold_start.png (bench/cold_start_table.py; docs/results.md, cold start).
set -eu
cd "$(dirname "$0")/.."
budget=${1:-7}
flags=${TRAIN_FLAGS---negatives-from trained}
root=${OUT:-out/cold-trained}
[ $# -gt 0 ] && shift
datasets=${*:-office}
for dataset in $datasets; do
    case $dataset in
        beauty) format=p5; input=../shared/data/beauty ;;
        office) format=lcrec; input=data/office ;;
        *) echo "unknown dataset $dataset" >&2; exit 2 ;;
    esac
    out=$root/$dataset
    mkdir -p "$out/results"
    shared=out/cold/$dataset
    if [ "$out" != "$shared" ]; then  # the same prepared data and codes as out/cold's
        for part in cold-prepared full-prepared codes; do
            [ -e "$out/$part" ] || [ ! -d "$shared/$part" ] || ln -s "$(pwd)/$shared/$part" "$out/$part"
        done
    fi
    for variant in cold full; do
        cold=""
        [ $variant = cold ] && cold="--cold-items 0.1 --seed 0"
        [ -d "$out/$variant-prepared" ] || bin/ccfrec data prepare --format $format \
            --input $input --output "$out/$variant-prepared" $cold > "$out/$variant-prepare.log"
    done
    # The codes depend on the catalog's texts only: one artifact for both variants.
    [ -d "$out/codes" ] || bin/ccfrec codes build --input "$out/cold-prepared" \
        --output "$out/codes" > "$out/codes.log" 2>&1
    for run in ccfrec:cold sasrec:cold ccfrec:full; do
        model=${run%:*} variant=${run#*:}
        dir=$out/$model-$variant
        [ -f "$dir/metrics.json" ] || bin/ccfrec train --preset $dataset --model $model \
            --data "$out/$variant-prepared" --codes "$out/codes" --output "$dir" \
            --time-budget-minutes "$budget" --no-progress $flags > "$dir.log" 2>&1
    done
    for model in ccfrec-cold sasrec-cold; do
        bin/ccfrec evaluate --model-dir "$out/$model" --split test > "$out/results/$model.json"
    done
    # The full-data model on the cold split's test examples (the same users and targets).
    bin/ccfrec evaluate --model-dir "$out/ccfrec-full" --split test --data "$out/cold-prepared" \
        > "$out/results/ccfrec-full.json"
    for kind in text-knn popularity; do
        bin/ccfrec baseline --kind $kind --data "$out/cold-prepared" --split test \
            > "$out/results/$kind.json"
    done
done
bin/env-run python bench/cold_start_table.py --output "$root/cold_start.png" "$root"/*/results
