#!/usr/bin/env bash
# The FFB grid of docs/ffb.md: every method x 8 penalty weights x seeds, one data set.
#
#   FAIRJAX_DATA_HOME=path/to/data benchmarks/ffb_grid.sh SIDE DATASET ATTR FIRST_SEED SEEDS [METHOD_SETS]
#
# SIDE: "jax" (benchmarks/ffb_tabular.py, fairjax's environment) or "ffb" (FFB's own code via
# benchmarks/ffb_tabular_peer.py, in FFB's environment; FFB_SRC=path/to/fair_fairness_benchmark/src).
# METHOD_SETS (default "rates hsic pr laftr extra reduction"): which calls to make; "extra"
# (fairjax's MMD and Wasserstein rows) and "reduction" (the reduction and its mixture, the
# weights being bounds on the training DP gap) run on the jax side only. Each call writes
# benchmarks/results/ffb_<side>_<dataset>_<attr>_s<first>-<last>_<set>.json.
set -euo pipefail
side=$1 dataset=$2 attr=$3 first=$4 seeds=$5
sets=${6:-"rates hsic pr laftr extra reduction"}
out=benchmarks/results
last=$((first + seeds - 1))
declare -A methods=(
  [rates]="erm,diffdp,diffeopp,diffeodd,adv" [hsic]="hsic" [pr]="pr" [laftr]="laftr"
  [extra]="mmd,wasserstein" [reduction]="reduction"
)
declare -A lams=(
  [rates]="0.05,0.1,0.2,0.5,1,2,5,10" [hsic]="1,2,5,10,20,50,100,200"
  [pr]="0.001,0.003,0.01,0.03,0.1,0.3,1,3" [laftr]="0.1,0.2,0.5,1,2,5,10,20"
  [extra]="0.3,1,3,10,30,100,300,1000" [reduction]="0.01,0.02,0.03,0.05,0.07,0.1,0.15,0.2"
)
for set in $sets; do
  file=$out/ffb_${side}_${dataset}_${attr}_s${first}-${last}_${set}.json
  common=(--dataset "$dataset" --sensitive-attr "$attr" --methods "${methods[$set]}"
          --lams "${lams[$set]}" --first-seed "$first" --seeds "$seeds" --json "$file")
  if [ "$side" = jax ]; then
    python benchmarks/ffb_tabular.py "${common[@]}"
  elif [ "$set" != extra ] && [ "$set" != reduction ]; then
    python benchmarks/ffb_tabular_peer.py --ffb-src "$FFB_SRC" "${common[@]}"
  fi
done
