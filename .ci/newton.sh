#!/usr/bin/env bash
# CI step: the Newton backend and the MuJoCo backend under MuJoCo 3.12 (what newton[sim]==1.6.1 pins), in a
# second venv (the main venv keeps MuJoCo 4.0; between them the MuJoCo tests run on both versions).
#   bash .ci/newton.sh              install into a temp dir, test, remove it (warp's kernel cache there too)
#   bash .ci/newton.sh install DIR  make the venv at DIR (.ci/run does this in the background)
#   bash .ci/newton.sh test DIR     run the tests with the venv at DIR (WARP_CACHE_PATH: the caller's, or DIR's)
# Measured on the 2-core machine: ~2.8 min to install, ~3.2 min of tests (most of it warp compiling kernels).
set -euo pipefail
cd "$(dirname "$0")/.."

install() {
    python3 -m venv "$1"
    "$1/bin/python" -m pip install -q --upgrade pip
    "$1/bin/python" -m pip install -q torch==2.13.0  # the local CPU build first, as in .ci/run; newton needs no torch
    "$1/bin/python" -m pip install -q -e '.[dev,mujoco,newton]'
    "$1/bin/python" - <<'PY'
import mujoco, newton, torch
assert mujoco.__version__.startswith("3.12."), mujoco.__version__
assert torch.__version__ == "2.13.0+cpu", torch.__version__
print(f"newton {newton.__version__}, mujoco {mujoco.__version__}, torch {torch.__version__}")
PY
}

run_tests() {
    export WARP_CACHE_PATH="${WARP_CACHE_PATH:-$1/warp-cache}"
    export MUJOCO_GL=egl
    "$1/bin/python" -m pytest -q -p no:cacheprovider --durations=8 \
        tests/sim/test_sim_physics.py tests/sim/test_sim_config.py tests/sim/test_sim_mujoco_early_import.py \
        tests/sim/test_sim_obs_backend.py tests/policy/test_policy_cross_sim.py tests/test_import_graph.py
}

case "${1:-}" in
    install) install "$2" ;;
    test) run_tests "$2" ;;
    "")
        work="$(mktemp -d -t vlnav-newton-ci-XXXXXX)"
        trap 'rm -rf "$work"' EXIT
        install "$work/venv"
        WARP_CACHE_PATH="$work/warp-cache" run_tests "$work/venv"
        ;;
    *) echo "usage: bash .ci/newton.sh [install DIR | test DIR]" >&2; exit 2 ;;
esac
