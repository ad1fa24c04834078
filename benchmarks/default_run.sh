#!/usr/bin/env bash
# Wall time of the default job from an empty cache: `ganbench run matrix` as a new user runs it.
# Usage: benchmarks/default_run.sh   (prints the results table and the wall time; the goal is < 15 min on
# 2 CPU cores, reference statistics and pretraining included)
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
GANBENCH_CACHE="$work/cache" ganbench run matrix --out "$work/runs" --quiet
elapsed=$(( $(date +%s) - start ))
echo "default job wall time: ${elapsed} s (goal: under 900 s on 2 CPU cores)"
