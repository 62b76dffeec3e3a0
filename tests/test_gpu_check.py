"""``bench/gpu_check.sh``: the one prepared GPU run parses, calls real options and fits in the device's 10 minutes.

The GPU run itself needs a lent machine; here the script's structure is checked: ``GPU_CHECK_DRY_RUN=print``
lists the GPU commands (checked against the options each bench script declares), and ``GPU_CHECK_DRY_RUN=1``
runs every step for real on the CPU at tiny sizes (slow).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu_check.sh"
STEPS = ["gpu_tests", "sim", "encoders", "build", "policy", "embed"]
DEVICE_COMMAND_LIMIT_S = 600


def _run(mode: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "GPU_CHECK_DRY_RUN": mode, "PYTHON": sys.executable}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def _planned() -> list[tuple[str, int, list[str]]]:
    res = _run("print", timeout=60)
    assert res.returncode == 0, res.stderr
    steps = []
    for line in res.stdout.splitlines():
        m = re.fullmatch(r"step (\w+) timeout (\d+): (.*)", line)
        assert m, line
        steps.append((m.group(1), int(m.group(2)), shlex.split(m.group(3))))
    return steps


def test_the_script_parses():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0


def test_every_step_has_a_timeout_and_all_fit_in_one_device_command():
    steps = _planned()
    assert [name for name, _, _ in steps] == STEPS
    assert sum(limit for _, limit, _ in steps) + 25 <= DEVICE_COMMAND_LIMIT_S  # + install, checks, kill grace


def test_gpu_commands_use_cuda_and_only_options_the_benches_declare():
    for name, _, cmd in _planned():
        if name == "gpu_tests":
            files = [a for a in cmd if a.startswith("tests/")]
            assert files and all("mark.gpu" in (ROOT / f).read_text() for f in files)
            assert "tests/collect/test_collect_gpu.py" in files and "tests/policy/test_policy_gpu.py" in files
            continue
        script = next(a for a in cmd if a.startswith("bench/"))
        declared = set(re.findall(r'add_argument\(\s*"(--[\w-]+)"', (ROOT / script).read_text()))
        used = {a for a in cmd if a.startswith("--")}
        assert used <= declared, (script, used - declared)
        assert "cuda" in cmd, (name, cmd)


@pytest.mark.slow  # every bench on the CPU at tiny sizes: about two minutes on the 2-core machine
def test_dry_run_runs_every_step_on_the_cpu(tmp_path):
    res = _run("1", str(tmp_path), timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    summary = (tmp_path / "summary.log").read_text()
    for name in STEPS:
        assert re.search(rf"^step {name}: rc=0 ok \d+s", summary, re.M), summary
        assert (tmp_path / f"{name}.log").stat().st_size > 0
    assert "mode=1 device=cpu" in summary
    assert "skipped" in (tmp_path / "gpu_tests.log").read_text()  # collected, skipped cleanly without CUDA
    assert len(list(tmp_path.iterdir())) <= 8  # the device tool brings back at most 8 files
