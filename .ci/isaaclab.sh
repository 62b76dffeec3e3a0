#!/usr/bin/env bash
# CI for the Isaac Lab backend (preset text2nav-isaaclab): its Python 3.12 environment, made by the project's
# script, and the tests that need Isaac Lab, run inside it.
#   bash .ci/isaaclab.sh              install into a temp dir, test, remove it (warp's kernel cache there too)
#   bash .ci/isaaclab.sh install DIR  make the environment at DIR (.ci/run does this in the background)
#   bash .ci/isaaclab.sh test DIR     run the tests with the environment at DIR
# Measured on the 2-core CI machine: 3.4 min to install (8 GB, torch 2.11.0 with its CUDA libraries from PyPI)
# and 3.1 min of tests (a cold warp cache: the first scene compiles ~25 s of kernels). Needs Python 3.12
# (VLNAV_PYTHON312 or pyenv's 3.12.1) and the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."

install() {
    # (this machine's pip config names local indexes that lack most packages: pip warns once per package)
    bash scripts/isaaclab-venv.sh "$1" 2>&1 | grep -v "is ignored: it is neither a file nor a directory"
}

run_tests() {
    export WARP_CACHE_PATH="${WARP_CACHE_PATH:-$1/warp-cache}"
    "$1/bin/python" -m pytest -q -p no:cacheprovider tests/sim/test_sim_isaaclab.py tests/policy/test_policy_isaaclab.py
    # The acceptance command itself, as a user runs it (exit 0 when the arena meets the contract).
    "$1/bin/vlnav-data" check-arena --preset text2nav-isaaclab --num-envs 2
}

case "${1:-}" in
    install) install "$2" ;;
    test) run_tests "$2" ;;
    "")
        work=$(mktemp -d -t vlnav-isaaclab-ci-XXXXXX)
        trap 'rm -rf "$work"' EXIT
        start=$(date +%s)
        install "$work/venv"
        installed=$(date +%s)
        WARP_CACHE_PATH="$work/warp-cache" run_tests "$work/venv"
        echo "isaaclab CI: install $((installed - start)) s, tests $(($(date +%s) - installed)) s"
        ;;
    *) echo "usage: bash .ci/isaaclab.sh [install DIR | test DIR]" >&2; exit 2 ;;
esac
