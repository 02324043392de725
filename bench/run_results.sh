#!/bin/sh
# The headline rows of docs/results.md: for each dataset, the tuned SASRec and CCFRec, one run per
# seed, then their small files committed under docs/results/runs/ and the tables drawn from them.
#
# Usage: bench/run_results.sh [--seeds "0 1 2"] [--ablations] [DATASET ...]
#   --seeds      the seeds of every row (default "0 1 2")
#   --ablations  also train CCFRec's ablations (no MCM, no MSA, no text cross-attention, RQ codes)
#                with seed 0, each for as many epochs as that dataset's CCFRec seed 0 took
#   DATASET      beauty office yelp (default: all three; Beauty and Yelp need ../shared/data)
#
# Every row trains on histories of 50 (`ccfrec data prepare --max-history 50`; CCFRec reads the
# last 20, its preset's max_history) with `--preset DATASET`, which gives each model its tuned
# setting (tf_ccfrec/training/presets.py). CCFRec stops after 10 validations without a better
# NDCG@10 (`--patience 10`, at most 300 minutes an invocation), SASRec after its preset's
# patience (50 for sasrec-ss, Office's; 10 for the sampled softmax of Beauty's and Yelp's). The
# first such plateaus instead go back to the best weights with the learning rate x0.3, as the
# presets say (`TrainConfig.plateau_decays`): on Office two for SASRec and one for CCFRec, on
# Beauty and Yelp two for both. Yelp's CCFRec row is the item-ID variant, its preset's
# (item_id_buckets 262144, lr 1e-3; docs/results.md, "Item-ID embeddings (Yelp)"): plain CCFRec
# on Yelp never rose above its first validation, its last-item model.
# Runs already finished (metrics.json present) are skipped; an interrupted run resumes from its
# checkpoint.
# Each finished run's config.json, history.json and metrics.json are copied to
# docs/results/runs/<dataset>-<model>-seed<k>/; `bench/headline.py` then prints the tables.
set -eu
cd "$(dirname "$0")/.."
seeds="0 1 2"
ablations=
while [ $# -gt 0 ]; do
    case $1 in
        --seeds) seeds=$2; shift 2 ;;
        --ablations) ablations=1; shift ;;
        *) break ;;
    esac
done
datasets=${*:-beauty office yelp}

# train DATASET LABEL SEED [OPTION ...]: out/runs/DATASET-LABEL-seedSEED, its files copied to docs/
train() {
    dataset=$1 label=$2 seed=$3
    shift 3
    dir=out/runs/$dataset-$label-seed$seed
    mkdir -p out/runs
    if [ ! -f "$dir/metrics.json" ]; then
        bin/ccfrec train --preset "$dataset" --data "out/$dataset/prepared50" \
            --output "$dir" --seed "$seed" --no-progress "$@" > "$dir.log" 2>&1
    fi
    case $label in *-*) return 0 ;; esac   # ablations stay in out/runs
    mkdir -p "docs/results/runs/$dataset-$label-seed$seed"
    cp "$dir/config.json" "$dir/history.json" "$dir/metrics.json" \
        "docs/results/runs/$dataset-$label-seed$seed/"
}

for dataset in $datasets; do
    case $dataset in
        beauty) format=p5; input=../shared/data/beauty ;;
        yelp) format=p5; input=../shared/data/yelp ;;
        office) format=lcrec; input=data/office ;;
        *) echo "unknown dataset $dataset" >&2; exit 2 ;;
    esac
    out=out/$dataset
    [ -d "$out/prepared50" ] || bin/ccfrec data prepare --format $format --input $input \
        --output "$out/prepared50" --max-history 50
    [ -d "$out/codes" ] || bin/ccfrec codes build --input "$out/prepared50" \
        --output "$out/codes" --no-progress
    for seed in $seeds; do
        train "$dataset" sasrec "$seed" --model sasrec --codes "$out/codes"
        train "$dataset" ccfrec "$seed" --model ccfrec --codes "$out/codes" --epochs 200 \
            --patience 10 --time-budget-minutes 300
    done
    if [ -n "$ablations" ]; then
        [ -d "$out/codes-rq" ] || bin/ccfrec codes build --input "$out/prepared50" \
            --output "$out/codes-rq" --method rq --no-progress
        epochs=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' \
            "out/runs/$dataset-ccfrec-seed0/history.json")
        for ablation in no-mcm no-msa no-text; do
            train "$dataset" "ccfrec-$ablation" 0 --model ccfrec --ablation "$ablation" \
                --codes "$out/codes" --epochs "$epochs" --patience 1000
        done
        train "$dataset" ccfrec-rq 0 --model ccfrec --codes "$out/codes-rq" --epochs "$epochs" \
            --patience 1000
    fi
done
bin/env-run python bench/headline.py
