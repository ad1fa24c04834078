#!/usr/bin/env bash
# The checks and measurements that need a GPU, from the repository root of an installed checkout:
#   benchmarks/gpu_check.sh OUT_DIR [STAGE...]
# Stages (default: all of them, in this order):
#   tests   the CUDA-path tests (pytest -m gpu: event timing, allocator peak memory, a whole cell, FID on
#           GPU vs CPU, every architecture with every strategy)
#   bench   the step-time benchmark of every architecture (benchmarks/test_step_time.py), JSON in OUT_DIR
#   fid     the FID pipeline benchmark on the GPU (benchmarks/fid_pipeline.py): ganbench vs clean-fid, images/s
#   default the default grid over $SEEDS (default 0,1,2) and its leaderboard
#   archs   the four-architecture grid over $ARCH_SEEDS (default $SEEDS) and its leaderboard; bounded by
#           $ARCHS_TIMEOUT seconds when set (complete cells are kept; rerunning resumes)
#   ray     8 small cells (the default grid's finetune + freeze-d, seeds 0-3, 100 fine-tuning steps) on a local
#           Ray cluster with --gpus-per-cell 0.25, against the local executor one at a time: wall seconds of each
#   stylegan2  config-f at 256 px loaded from a random rosinality-format checkpoint, the FFHQ 10-shot recipe:
#           s/kimg in fp32, bf16, channels-last, compile (benchmarks/stylegan2_speed.py)
#   ffhq-cell  one cell of protocols/ffhq-10shot.toml through `ganbench run matrix` at the real size (a random
#           config-f checkpoint, a generated 256-px folder target), 200 steps, 500 samples, per precision /
#           compile variant (benchmarks/ffhq_cell.py)
# Logs, leaderboards (leaderboard-<grid>-<gpu>.csv/.md) and the run directories (runs.tar.gz) land in OUT_DIR.
set -uo pipefail
out=${1:?usage: benchmarks/gpu_check.sh OUT_DIR [tests|bench|default|archs]...}
shift
stages=${*:-tests bench fid default archs ray stylegan2 ffhq-cell}
seeds=${SEEDS:-0,1,2}
mkdir -p "$out"
runs="$out/runs"
status=0
gpu=$(python -c "import re, torch; m = re.search(r'[A-Z]+[0-9]+', torch.cuda.get_device_name(0).replace('NVIDIA', ''))
print(m.group(0).lower() if m else 'gpu')")
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$out/gpu.txt" 2>&1 || true

leaderboard() {  # grid name
    for ext in csv md; do
        ganbench leaderboard "$runs/$1"-* -o "$out/leaderboard-$1-$gpu.$ext" || status=1
    done
}

for stage in $stages; do
    case $stage in
    tests)
        python -m pytest -q -p no:cacheprovider -m gpu tests 2>&1 | tee "$out/cuda-tests.txt" || status=1 ;;
    bench)
        python -m pytest -q -p no:cacheprovider benchmarks/test_step_time.py --benchmark-only \
            --benchmark-json="$out/step-time.json" 2>&1 | tail -30 | tee "$out/step-time.txt" || status=1 ;;
    fid)
        python benchmarks/fid_pipeline.py --device cuda --n 2000 --n-ref 2000 --resolution 64 --channels 3 2>&1 |
            tee "$out/fid-pipeline.txt" || status=1 ;;
    default)
        ganbench run matrix --name default --seeds "$seeds" --device cuda --out "$runs" --quiet 2>&1 |
            tee "$out/default-run.txt" || status=1
        leaderboard default ;;
    archs)
        ${ARCHS_TIMEOUT:+timeout "$ARCHS_TIMEOUT"} ganbench run matrix --name archs \
            --arch dcgan,resnet-sngan,stylegan2-lite,projected --strategy scratch,finetune,freeze-d,adapter \
            --seeds "${ARCH_SEEDS:-$seeds}" --device cuda --out "$runs" --quiet 2>&1 | tee "$out/archs-run.txt" || status=1
        leaderboard archs ;;
    ray)
        small=(--strategy finetune,freeze-d --no-baseline --seeds 0,1,2,3 --finetune-steps 100 --device cuda --quiet)
        ganbench run matrix "${small[@]}" --name ray-warm-up --finetune-steps 1 --out "$runs" >/dev/null 2>&1
        for how in local ray; do
            start=$(date +%s.%N)
            if [ $how = ray ]; then extra=(--executor ray --gpus-per-cell 0.25); else extra=(); fi
            ganbench run matrix "${small[@]}" --name "ray-$how" "${extra[@]}" --out "$runs" >"$out/ray-$how.txt" 2>&1 || status=1
            echo "$how: $(python -c "print(f'{$(date +%s.%N) - $start:.1f}')") s for 8 cells" | tee -a "$out/ray-throughput.txt"
        done ;;
    stylegan2)  # config-f at 256 px from a random rosinality-format checkpoint: s/kimg fp32 / bf16 / compile
        python benchmarks/stylegan2_speed.py --device cuda 2>&1 | tee "$out/stylegan2-speed.txt" || status=1 ;;
    ffhq-cell)  # the protocol's cell at the real size: s/kimg, eval seconds, peak memory per variant
        python benchmarks/ffhq_cell.py --device cuda --out "$out/ffhq-cell" 2>&1 | tee "$out/ffhq-cell.txt" || status=1
        rm -rf "$out/ffhq-cell/random-config-f.pt" "$out/ffhq-cell/target" ;;
    *) echo "unknown stage $stage" >&2; exit 2 ;;
    esac
done
[ -d "$runs" ] && tar -czf "$out/runs.tar.gz" -C "$out" runs && rm -rf "$runs"
exit $status
