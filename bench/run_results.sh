#!/bin/sh
# The training runs behind docs/results.md, then its tables and curves.
#
# Usage: bench/run_results.sh [BUDGET_MINUTES] [DATASET ...]
#   BUDGET_MINUTES  wall-clock training budget of CCFRec and of SASRec on each dataset (default 55)
#   DATASET         beauty office yelp (default: all three)
# CCFRec and SASRec train under the same budget. The ablations (no MCM, no MSA, no text
# cross-attention, RQ codes) then train for exactly as many steps as that dataset's CCFRec run
# took, so that each differs from it in one component only (not in how many examples it saw).
# CCFRec and its ablations train on Yelp with lr 1e-3 (at the preset's 2e-3 its validation falls
# after the first epoch, docs/results.md). Runs already finished (metrics.json present) are
# skipped; an interrupted run resumes from its last checkpoint. Needs ../shared/data (Beauty,
# Yelp) beside the repository.
set -eu
cd "$(dirname "$0")/.."
budget=${1:-55}
[ $# -gt 0 ] && shift
datasets=${*:-beauty office yelp}

# train DATASET LABEL MODEL ABLATION CODES [OPTION ...]
train() {
    dataset=$1 label=$2 model=$3 ablation=$4 codes=$5
    shift 5
    dir=out/runs/$dataset-$label
    [ -f "$dir/metrics.json" ] && return 0
    mkdir -p out/runs
    bin/ccfrec train --preset "$dataset" --model "$model" --ablation "$ablation" \
        --data "out/$dataset/prepared" --codes "out/$dataset/$codes" --output "$dir" \
        --no-progress "$@" > "$dir.log" 2>&1
}

for dataset in $datasets; do
    case $dataset in
        beauty) format=p5; input=../shared/data/beauty; lr= ;;
        yelp) format=p5; input=../shared/data/yelp; lr="--learning-rate 1e-3" ;;
        office) format=lcrec; input=data/office; lr= ;;
        *) echo "unknown dataset $dataset" >&2; exit 2 ;;
    esac
    out=out/$dataset
    [ -d "$out/prepared" ] || bin/ccfrec data prepare --format $format --input $input \
        --output "$out/prepared"
    [ -d "$out/codes" ] || bin/ccfrec codes build --input "$out/prepared" --output "$out/codes" \
        --no-progress
    [ -d "$out/codes-rq" ] || bin/ccfrec codes build --input "$out/prepared" \
        --output "$out/codes-rq" --method rq --no-progress
    train "$dataset" ccfrec ccfrec none codes --time-budget-minutes "$budget" $lr
    train "$dataset" sasrec sasrec none codes --time-budget-minutes "$budget"
    epochs=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' \
        "out/runs/$dataset-ccfrec/history.json")
    for ablation in no-mcm no-msa no-text; do
        train "$dataset" "ccfrec-$ablation" ccfrec "$ablation" codes --epochs "$epochs" --patience 1000 $lr
    done
    train "$dataset" ccfrec-rq ccfrec none codes-rq --epochs "$epochs" --patience 1000 $lr
done
bin/env-run python bench/results.py --runs out/runs --plots docs/results
