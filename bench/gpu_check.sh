#!/usr/bin/env bash
# The GPU check: ONE prepared run for a lent H100/H200 (runbook: bench/RESULTS.md, "Still to measure").
#
# On the lent machine (the device tool, repository root, carry [".whl"], timeout_s 600):
#     bash bench/gpu_check.sh                      # logs under $OUT (the tool's folder) or ./gpu_check_out
# Here, on the CPU, before spending device time:
#     GPU_CHECK_DRY_RUN=1 bash bench/gpu_check.sh /tmp/dry   # every step for real: --device cpu, tiny sizes
#     GPU_CHECK_DRY_RUN=print bash bench/gpu_check.sh        # print the commands only
#
# It installs nothing from the network: the wheels the lent machine lacks travel in .whl/ (git-excluded; the
# runbook says how to fetch them) and go to /tmp/site. Then, each step under `timeout`, one log each:
#     gpu_tests.log  the gpu-marked tests (every test file that uses the marker)
#     sim.log        simulator frames/s at N = 1024 and 4096 (renderer, env steps with torch/numpy observations)
#     encoders.log   so400m architecture (random weights) images/s: plain transformers baseline, eager, compiled
#     build.log      build_dataset end-to-end / encoder-only frames/s (so400m), the build ratio
#     policy.log     BC training steps/s; student rollouts with so400m online, env-steps/s (torch vs numpy obs)
#     embed.log      vlnav-data embed frames/s with so400m against its same-run baseline
#     summary.log    the machine, each step's exit code and seconds, and the headline lines of every log
# The step timeouts add up to 575 s, inside the device tool's 600 s per command; a step that fails or runs out
# of time is recorded and the next one runs. Exit code: 0 when every step exited 0, else 1.
set -uo pipefail
cd "$(dirname "$0")/.."
MODE="${GPU_CHECK_DRY_RUN:-0}"
OUT_DIR="${1:-${OUT:-gpu_check_out}}"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg

if [ "$MODE" = "0" ] || [ "$MODE" = "print" ]; then  # print: the commands of the GPU run
    DEV=cuda
    SIM=(--devices cuda --sizes 1024 4096 --seconds 2 --mujoco-sizes)
    ENC=(--device cuda --batches 256 --baseline-batches 256 --tower-batches 256 --iters 3)
    BUILD=(--device cuda --so400m-random --num-episodes 64 --num-envs 64 --max-episode-steps 40)
    POLICY=(--device cuda --train-steps 2000 --eval-so400m-random --eval-episodes 32 --num-envs 32
        --eval-max-episode-steps 100)
    EMBED=(--device cuda --so400m-random --num-episodes 16 --num-envs 16 --max-episode-steps 60 --repeats 2)
else
    # Dry run: the same scripts and option names at tiny sizes on the CPU; the so400m benches build one
    # vision layer (BENCH_SO400M_LAYERS) and the gpu tests are collected and skipped (no CUDA visible).
    DEV=cpu
    export CUDA_VISIBLE_DEVICES="" BENCH_SO400M_LAYERS=1
    SIM=(--devices cpu --sizes 2 --seconds 0.2 --mujoco-sizes --no-compile)
    ENC=(--device cpu --batches 256 --baseline-batches 256 --tower-batches 256 --iters 3 --cpu-batch 1
        --cpu-dtypes fp32)
    BUILD=(--device cpu --so400m-random --num-episodes 2 --num-envs 2 --max-episode-steps 4 --image-size-px 32)
    POLICY=(--device cpu --train-steps 20 --rows 400 --eval-so400m-random --eval-episodes 2 --num-envs 2
        --eval-max-episode-steps 4)
    EMBED=(--device cpu --so400m-random --num-episodes 2 --num-envs 2 --max-episode-steps 4 --image-size-px 32
        --repeats 1)
fi
GPU_TESTS=($(grep -rl --include='test_*.py' 'mark.gpu' tests | sort))

STEPS=()   # "name timeout_s" in order; the command of step NAME is in CMD_<name>
CMD_gpu_tests=("$PY" -m pytest -q -m gpu -p no:cacheprovider -rs "${GPU_TESTS[@]}")
CMD_sim=("$PY" bench/sim_throughput.py "${SIM[@]}")
CMD_encoders=("$PY" bench/encoder_throughput.py "${ENC[@]}")
CMD_build=("$PY" bench/build_throughput.py "${BUILD[@]}")
CMD_policy=("$PY" bench/policy.py "${POLICY[@]}")
CMD_embed=("$PY" bench/embed_throughput.py "${EMBED[@]}")
STEPS=("gpu_tests 150" "sim 70" "encoders 150" "build 80" "policy 60" "embed 50")

if [ "$MODE" = "print" ]; then
    for entry in "${STEPS[@]}"; do
        read -r name limit <<<"$entry"
        declare -n cmd="CMD_$name"
        echo "step $name timeout $limit: ${cmd[*]}"
        unset -n cmd
    done
    exit 0
fi

mkdir -p "$OUT_DIR"
SUMMARY="$OUT_DIR/summary.log"
{
    echo "gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ) mode=${MODE} device=${DEV} commit=$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$SUMMARY" 2>&1

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ "$MODE" = "0" ] && compgen -G ".whl/*.whl" >/dev/null; then
    if "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        >>"$SUMMARY" 2>&1; then
        export PYTHONPATH="$PYTHONPATH:/tmp/site"
        echo "installed $(ls .whl | wc -l) wheels from .whl into /tmp/site" >>"$SUMMARY"
    else
        echo "wheel install FAILED (see above); the steps run without them" >>"$SUMMARY"
    fi
fi
"$PY" - >>"$SUMMARY" 2>&1 <<'EOF'
import importlib, platform
import torch
print(f"python {platform.python_version()}, torch {torch.__version__}, CUDA available {torch.cuda.is_available()}"
      + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""))
for name in ("transformers", "numpy", "h5py", "gymnasium", "stable_baselines3", "faiss", "umap", "scipy", "typer"):
    try:
        print(f"  {name} {getattr(importlib.import_module(name), '__version__', '?')}")
    except Exception as exc:  # report, do not stop: a step that needs it will say so in its own log
        print(f"  {name} MISSING ({type(exc).__name__}: {exc})")
EOF

failed=0
for entry in "${STEPS[@]}"; do
    read -r name limit <<<"$entry"
    declare -n cmd="CMD_$name"
    log="$OUT_DIR/$name.log"
    echo "\$ ${cmd[*]}" >"$log"
    start=$(date +%s)
    timeout --kill-after=5 "$limit" "${cmd[@]}" >>"$log" 2>&1
    rc=$?
    unset -n cmd
    took=$(($(date +%s) - start))
    status="ok"
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then status="TIMEOUT after ${limit}s"; elif [ "$rc" -ne 0 ]; then status="FAILED"; fi
    [ "$rc" -eq 0 ] || failed=1
    echo "step $name: rc=$rc ${status} ${took}s (log $name.log)" >>"$SUMMARY"
done

{
    echo "---- headline lines"
    grep -hE "passed|failed|skipped|error" "$OUT_DIR/gpu_tests.log" | tail -3
    grep -hE "fps|env-steps/s" "$OUT_DIR/sim.log"
    grep -hE "images/s" "$OUT_DIR/encoders.log" | tail -12
    grep -hE "frames/s|ratio|compiled" "$OUT_DIR/build.log"
    grep -hE "steps/s|DataLoader" "$OUT_DIR/policy.log"
    grep -hE "ratio|frames/s" "$OUT_DIR/embed.log" | tail -6
} >>"$SUMMARY" 2>&1
cat "$SUMMARY"
exit "$failed"
