#!/usr/bin/env bash
# The checks and measurements that need a GPU, in one go, from the repository root of an installed checkout:
#   benchmarks/gpu_check.sh OUT_DIR [SEEDS]
# 1. the CUDA-path tests (tests/test_cuda.py: event timing, allocator peak memory, a cell, FID, every
#    architecture with every strategy); 2. the step-time benchmark of every architecture; 3. the default grid
#    and the four-architecture grid over SEEDS (default 0,1,2), with their leaderboards. Everything lands in
#    OUT_DIR: logs, benchmark JSON, run directories (as runs.tar.gz) and the leaderboards.
set -uo pipefail
out=${1:?usage: benchmarks/gpu_check.sh OUT_DIR [SEEDS]}
seeds=${2:-0,1,2}
mkdir -p "$out"
status=0
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$out/gpu.txt" 2>&1 || true
python -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tee "$out/cuda-tests.txt" || status=1
python -m pytest -q -p no:cacheprovider benchmarks/test_step_time.py --benchmark-only \
    --benchmark-json="$out/step-time.json" 2>&1 | tail -30 | tee "$out/step-time.txt" || status=1
runs="$out/runs"
ganbench run matrix --name default --seeds "$seeds" --device cuda --out "$runs" --quiet 2>&1 | tee "$out/default-run.txt" || status=1
ganbench run matrix --name archs --arch dcgan,resnet-sngan,stylegan2-lite,projected --strategy scratch,finetune,freeze-d,adapter \
    --seeds "$seeds" --device cuda --out "$runs" --quiet 2>&1 | tee "$out/archs-run.txt" || status=1
device=$(python -c "import re, torch; m = re.search(r'[A-Z]+[0-9]+', torch.cuda.get_device_name(0).replace('NVIDIA', ''))
print(m.group(0).lower() if m else 'gpu')")
for grid in default archs; do
    for ext in csv md; do
        ganbench leaderboard "$runs/$grid"-* -o "$out/leaderboard-$grid-$device.$ext" || status=1
    done
done
tar -czf "$out/runs.tar.gz" -C "$out" runs && rm -rf "$runs"
exit $status
