#!/usr/bin/env bash
# CI step: the Newton backend and the MuJoCo backend under MuJoCo 3.12 (what newton[sim]==1.6.1 pins), in a
# second venv that is removed on exit, with warp's kernel cache in a temp dir (no run shares compiled kernels).
# The main venv keeps MuJoCo 4.0; between them the MuJoCo tests run on both versions.
# Run from .ci/run after the main suite: `bash .ci/newton.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

work="$(mktemp -d -t vlnav-newton-ci-XXXXXX)"
trap 'rm -rf "$work"' EXIT
export WARP_CACHE_PATH="$work/warp-cache"
export MUJOCO_GL=egl

python3 -m venv "$work/venv"
. "$work/venv/bin/activate"
python -m pip install -q --upgrade pip
python -m pip install -q torch==2.13.0  # the local CPU build first, as in .ci/run; newton needs no torch
python -m pip install -q -e '.[dev,mujoco,newton]'
python - <<'PY'
import mujoco, newton, torch
assert mujoco.__version__.startswith("3.12."), mujoco.__version__
assert torch.__version__ == "2.13.0+cpu", torch.__version__
print(f"newton {newton.__version__}, mujoco {mujoco.__version__}, torch {torch.__version__}")
PY

python -m pytest -q -p no:cacheprovider --durations=8 \
    tests/sim/test_sim_physics.py tests/sim/test_sim_config.py tests/sim/test_sim_mujoco_early_import.py \
    tests/sim/test_sim_obs_backend.py tests/policy/test_policy_cross_sim.py tests/test_import_graph.py
