#!/usr/bin/env bash
# Make the Python 3.12 environment of the Isaac Lab backend (preset text2nav-isaaclab) at DIR:
#   bash scripts/isaaclab-venv.sh DIR
# A venv at DIR (which must not exist yet) with Isaac Lab 3 (kit-less: Newton physics, the Newton Warp renderer; no Isaac Sim, no
# Omniverse Kit) and this project installed editable. Isaac Lab 3.0 needs Python 3.12 (the project's own
# environment may be 3.10 or 3.11). Its pins decide the shared packages: torch==2.11.0, transformers==5.10.4,
# newton[sim]==1.6.1, warp-lang==1.17.0 (the project's bounds admit them). torch 2.11.0 comes from PyPI, the
# build with CUDA libraries (about 7.8 GB in all, about 3 minutes here); it runs on the CPU too.
# Python: $VLNAV_PYTHON312, else /root/.pyenv/versions/3.12.1/bin/python, else python3.12 on PATH.
set -euo pipefail
if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "error: expected one argument, the directory to make the environment in (bash scripts/isaaclab-venv.sh DIR: a Python 3.12 venv with isaaclab==3.0.0 and vlnav-data); got $# arguments" >&2
    exit 2
fi
dir=$1
if [ -e "$dir" ]; then
    echo "error: '$dir' already exists; bash scripts/isaaclab-venv.sh makes a new environment: name a directory that does not exist yet" >&2
    exit 2
fi
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${VLNAV_PYTHON312:-}
if [ -z "$python" ]; then
    if [ -x /root/.pyenv/versions/3.12.1/bin/python ]; then
        python=/root/.pyenv/versions/3.12.1/bin/python
    else
        python=$(command -v python3.12 || true)
    fi
fi
if [ -z "$python" ] || ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then
    echo "error: Isaac Lab 3 needs Python 3.12, found ${python:-no python3.12}; set VLNAV_PYTHON312 to a python3.12 executable" >&2
    exit 2
fi
"$python" -m venv "$dir"
"$dir/bin/python" -m pip install -q --upgrade pip
# One resolve for both, so that pip picks versions that satisfy Isaac Lab's pins and the project's bounds.
"$dir/bin/python" -m pip install -q "isaaclab==3.0.0" -e "$repo"
# pytest for the backend's tests (tests/sim/test_isaaclab.py)
"$dir/bin/python" -m pip install -q "pytest>=8,<10"
"$dir/bin/python" -c 'import isaaclab, vlnav_data; print("isaaclab", isaaclab.__version__ if hasattr(isaaclab, "__version__") else "", "ready at", __import__("sys").prefix)'
