#!/bin/sh
# The training runs behind docs/results.md: every dataset x model, each under the same wall-clock
# budget on this machine, then the tables and curves.
#
# Usage: bench/run_results.sh [BUDGET_MINUTES] [DATASET ...]
#   BUDGET_MINUTES  training budget of each run (default 55)
#   DATASET         beauty office yelp (default: all three)
# Runs already finished (metrics.json present) are skipped; an interrupted run resumes from its
# last checkpoint. Needs ../shared/data (Beauty, Yelp) beside the repository.
set -eu
cd "$(dirname "$0")/.."
budget=${1:-55}
[ $# -gt 0 ] && shift
datasets=${*:-beauty office yelp}
for dataset in $datasets; do
    case $dataset in
        beauty) format=p5; input=../shared/data/beauty ;;
        yelp) format=p5; input=../shared/data/yelp ;;
        office) format=lcrec; input=data/office ;;
        *) echo "unknown dataset $dataset" >&2; exit 2 ;;
    esac
    out=out/$dataset
    [ -d "$out/prepared" ] || bin/ccfrec data prepare --format $format --input $input \
        --output "$out/prepared"
    [ -d "$out/codes" ] || bin/ccfrec codes build --input "$out/prepared" --output "$out/codes" \
        --no-progress
    [ -d "$out/codes-rq" ] || bin/ccfrec codes build --input "$out/prepared" \
        --output "$out/codes-rq" --method rq --no-progress
    for run in ccfrec:ccfrec:none:codes sasrec:sasrec:none:codes ccfrec-no-mcm:ccfrec:no-mcm:codes \
               ccfrec-no-msa:ccfrec:no-msa:codes ccfrec-no-text:ccfrec:no-text:codes \
               ccfrec-rq:ccfrec:none:codes-rq; do
        IFS=: read -r label model ablation codes <<RUN
$run
RUN
        dir=out/runs/$dataset-$label
        [ -f "$dir/metrics.json" ] && continue
        bin/ccfrec train --preset "$dataset" --model "$model" --ablation "$ablation" \
            --data "$out/prepared" --codes "$out/$codes" --output "$dir" \
            --time-budget-minutes "$budget" --no-progress > "$dir.log" 2>&1
    done
done
bin/env-run python bench/results.py --runs out/runs --plots docs/results
