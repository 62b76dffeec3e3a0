"""The README runs as written: its ```bash blocks, in order, in one fresh directory, offline, on a CPU.

Rules (also stated in the README, "How the README is tested"):

- Every ```bash block runs, in order, with ``bash -euo pipefail`` in one temporary directory (nothing of
  the repository is there: a command that needs a repository file is a README bug), with
  ``HF_HUB_OFFLINE=1``. ```sh blocks (network, real weights, a GPU, a cluster, the test suite itself)
  are shown, not run.
- Sizes are scaled down so the test fits the CI budget; the rewrite is the only change to the text:
  ``--num-episodes N`` -> ``min(N, 10)``, ``--steps N`` -> ``min(N, 300)``.
- A ```text block right after a ```bash block is what those commands print at full size. With
  ``VLNAV_README_FULL=1`` nothing is scaled and every line of it must appear in the output (``…``
  stands for any text, e.g. a timing) -- this is how the README's numbers are checked; it takes tens of
  minutes on two cores, so CI runs the scaled version only.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
FULL = os.environ.get("VLNAV_README_FULL") == "1"
SCALE = {"--num-episodes": 10, "--steps": 300}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def readme_blocks(text: str) -> list[tuple[str, str, str | None]]:
    """``(language, body, expected_output)`` per fenced block; expected is the ```text block after a bash one."""
    fenced = [(m.group(1), m.group(2)) for m in FENCE.finditer(text)]
    out = []
    for i, (lang, body) in enumerate(fenced):
        if lang == "text":
            continue
        follows = fenced[i + 1] if i + 1 < len(fenced) else None
        expected = follows[1] if lang == "bash" and follows is not None and follows[0] == "text" else None
        out.append((lang, body, expected))
    return out


def scaled(line: str) -> str:
    """A README command with the sizes of :data:`SCALE` capped (the rest of the line unchanged)."""
    for flag, cap in SCALE.items():
        line = re.sub(rf"{flag} (\d+)", lambda m, f=flag, c=cap: f"{f} {min(int(m.group(1)), c)}", line)
    return line


def missing_lines(expected: str, output: str) -> list[str]:
    """Lines of ``expected`` (``…`` = any text) that do not occur in ``output``."""
    missing = []
    for line in (ln.strip() for ln in expected.splitlines()):
        if not line:
            continue
        pattern = ".*".join(re.escape(part.strip()) for part in line.split("…"))
        if not re.search(pattern, output):
            missing.append(line)
    return missing


def test_scaling_rewrites_only_the_sizes() -> None:
    line = "vlnav-data build --out demos.h5 --num-episodes 150 --encoder oracle --image-size-px 64"
    assert scaled(line) == "vlnav-data build --out demos.h5 --num-episodes 10 --encoder oracle --image-size-px 64"
    assert scaled("vlnav-policy train d.h5 --out m --steps 20000 --seed 1") == (
        "vlnav-policy train d.h5 --out m --steps 300 --seed 1"
    )
    assert scaled("vlnav-policy eval m --num-episodes 3") == "vlnav-policy eval m --num-episodes 3"
    assert missing_lines("oracle … 97/100 = 97.0%\n\nexpert", "oracle (joint): 97/100 = 97.0% ...\nexpert") == []
    assert missing_lines("success 98/100", "success 97/100") == ["success 98/100"]


def test_readme_has_no_links_outside_the_repository() -> None:
    text = README.read_text()
    assert "../shared" not in text
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if "://" not in target:
            assert (README.parent / target).exists(), f"README links to '{target}', which is not in the repository"


def test_readme_bash_blocks_run_in_order(tmp_path: Path) -> None:
    blocks = [b for b in readme_blocks(README.read_text()) if b[0] == "bash"]
    assert blocks, "the README has no ```bash block"
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "MPLBACKEND": "Agg"})
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    report = []
    for k, (_, body, expected) in enumerate(blocks):
        script = "\n".join(line if FULL else scaled(line) for line in body.splitlines())
        started = time.perf_counter()
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=None if FULL else 600,
        )
        output = run.stdout + run.stderr
        report.append(f"block {k}: {time.perf_counter() - started:.1f} s")
        assert run.returncode == 0, f"README ```bash block {k} failed (exit {run.returncode}):\n{script}\n\n{output}"
        if FULL and expected is not None:
            missing = missing_lines(expected, output)
            assert not missing, f"block {k} did not print {missing}; it printed:\n{output}"
    print("\n".join(report))


@pytest.mark.parametrize("lang", ["bash", "sh"])
def test_readme_blocks_name_real_commands(lang: str) -> None:
    """Every `vlnav-*` command the README shows exists (its --help exits 0), run or not."""
    from typer.testing import CliRunner

    from vlnav_data.cli import data, expert, policy, probe

    apps = {"vlnav-data": data.app, "vlnav-expert": expert.app, "vlnav-policy": policy.app, "vlnav-probe": probe.app}
    runner = CliRunner()
    for _, body, _ in (b for b in readme_blocks(README.read_text()) if b[0] == lang):
        for line in body.splitlines():
            words = line.split("#", 1)[0].split()
            if words and words[0] in apps and len(words) > 1 and not words[1].startswith("-"):
                res = runner.invoke(apps[words[0]], [words[1], "--help"])
                assert res.exit_code == 0, f"README shows `{words[0]} {words[1]}`, which does not exist"
