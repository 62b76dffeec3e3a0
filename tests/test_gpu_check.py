"""``bench/gpu_check.sh``: the one prepared GPU run calls its benches with arguments they accept and fits in the
device's 10 minutes.

The GPU run itself needs a lent machine. Here ``GPU_CHECK_DRY_RUN=print`` lists the steps the script would run;
every bench command's arguments then go through that bench's own ``argparse`` parser (in this process's Python,
stopped right after parsing), so a renamed option, a value outside its choices or of the wrong type fails here
as it would on the device, and each must ask for CUDA. ``GPU_CHECK_DRY_RUN=1`` runs every step for real on the
CPU at tiny sizes (slow).
"""

from __future__ import annotations

import json
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


def test_every_step_has_a_timeout_and_all_fit_in_one_device_command():
    steps = _planned()
    assert [name for name, _, _ in steps] == STEPS
    assert sum(limit for _, limit, _ in steps) + 25 <= DEVICE_COMMAND_LIMIT_S  # + install, checks, kill grace


# Runs each bench (``[[script, *args], ...]`` in argv[1]) as its console command would, up to its parse_args(),
# in one process (torch is imported once): prints, per bench, the parsed options or argparse's error.
PARSE_ONLY = """
import argparse, contextlib, io, json, os, runpy, sys

class Parsed(Exception):
    pass

parse = argparse.ArgumentParser.parse_args

def parse_and_stop(self, args=None, namespace=None):
    raise Parsed(vars(parse(self, args, namespace)))

argparse.ArgumentParser.parse_args = parse_and_stop
outcomes = []
for argv in json.loads(sys.argv[1]):
    sys.argv = argv
    sys.path.insert(0, os.path.dirname(os.path.abspath(argv[0])))  # as `python bench/x.py` sets it
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            runpy.run_path(argv[0], run_name="__main__")
        outcomes.append({"error": "finished without parsing its arguments"})
    except Parsed as parsed:
        outcomes.append({"parsed": parsed.args[0]})
    except SystemExit:
        outcomes.append({"error": err.getvalue()})
    sys.path.pop(0)
print(json.dumps(outcomes, default=str))
"""


def test_the_pytest_step_runs_gpu_marked_files_that_exist():
    (cmd,) = [cmd for name, _, cmd in _planned() if name == "gpu_tests"]
    files = [a for a in cmd if a.startswith("tests/")]
    assert "tests/collect/test_collect_gpu.py" in files and "tests/policy/test_policy_gpu.py" in files
    for f in files:
        assert "mark.gpu" in (ROOT / f).read_text(), f  # pytest -m gpu would otherwise select nothing there


def test_every_bench_step_parses_its_arguments_with_the_bench_and_asks_for_cuda():
    steps = []
    for name, _, cmd in _planned():
        if name != "gpu_tests":
            steps.append((name, cmd[next(i for i, a in enumerate(cmd) if a.startswith("bench/")) :]))
    res = subprocess.run(
        [sys.executable, "-c", PARSE_ONLY, json.dumps([argv for _, argv in steps])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    outcomes = json.loads(res.stdout.strip().splitlines()[-1])
    for (name, argv), outcome in zip(steps, outcomes, strict=True):
        assert "parsed" in outcome, (name, argv, outcome["error"])  # e.g. "error: unrecognized arguments: ..."
        devices = outcome["parsed"].get("device", outcome["parsed"].get("devices"))
        assert "cuda" in (devices if isinstance(devices, list) else [devices]), (name, outcome)


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
