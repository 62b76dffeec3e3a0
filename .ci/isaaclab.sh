#!/usr/bin/env bash
# CI for the Isaac Lab backend (preset text2nav-isaaclab): make its Python 3.12 environment in a temporary
# directory with the project's script, run the tests that need Isaac Lab inside it, delete everything on exit.
# Warp's kernel cache goes to a temporary directory too (a cold cache: the first scene compiles ~25 s of kernels).
# Measured on the 2-core CI machine: 6.7 min in all, 3.4 min to install (8 GB, torch 2.11.0 with its CUDA
# libraries from PyPI) and 3.1 min of tests (10 tests in 2.5 min, then check-arena); a test added since (robots
# never see or touch each other) takes ~6 s more. Needs Python 3.12 (VLNAV_PYTHON312 or pyenv's 3.12.1) and
# the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d -t vlnav-isaaclab-ci-XXXXXX)
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
# (this machine's pip config names local indexes that lack most packages: pip warns once per package)
bash scripts/isaaclab-venv.sh "$work/venv" 2>&1 | grep -v "is ignored: it is neither a file nor a directory"
installed=$(date +%s)
export WARP_CACHE_PATH="$work/warp-cache"
"$work/venv/bin/python" -m pytest -q -p no:cacheprovider tests/sim/test_sim_isaaclab.py tests/policy/test_policy_isaaclab.py
# The acceptance command itself, as a user runs it (exit 0 when the arena meets the contract).
"$work/venv/bin/vlnav-data" check-arena --preset text2nav-isaaclab --num-envs 2
echo "isaaclab CI: install $((installed - start)) s, tests $(($(date +%s) - installed)) s"
