"""The README and its guides run as written: their ```bash blocks, in order, in one fresh directory, offline, on a CPU.

Rules (also stated in the README's quickstart):

- Every ```bash block of README.md, then of each guide in :data:`GUIDES` (in that order: the guides continue
  the quickstart and use its files) runs, in order, with ``bash -euo pipefail`` in one temporary directory (nothing of
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

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: The guides the README links to, in the order their blocks run after the README's.
GUIDES = tuple(
    ROOT / "docs" / name
    for name in (
        "encoders.md",
        "study.md",
        "simulators.md",
        "publishing.md",
        "scaling.md",
        "results.md",
        "commands.md",
        "viz.md",
        "own_data.md",
    )
)
DOCUMENTS = (README, *GUIDES)
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


def all_blocks() -> list[tuple[str, str, str | None]]:
    """The blocks of the README, then of every guide, in running order."""
    return [block for doc in DOCUMENTS for block in readme_blocks(doc.read_text())]


def test_readme_links_every_guide_and_the_guides_exist() -> None:
    text = README.read_text()
    for guide in GUIDES:
        assert f"](docs/{guide.name})" in text, f"the README's 'Where to go next' does not link {guide.name}"
    assert len(text.splitlines()) <= 250, "the README is a front door: guides go under docs/"


@pytest.mark.parametrize("doc", DOCUMENTS, ids=lambda d: d.name)
def test_readme_has_no_links_outside_the_repository(doc: Path) -> None:
    text = doc.read_text()
    assert "../shared" not in text
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if "://" not in target:
            assert (doc.parent / target).exists(), f"{doc.name} links to '{target}', which is not in the repository"


def test_readme_install_line_installs_what_ci_installs() -> None:
    """The README's set-up command names the extras the README's and guides' bash blocks need: CI installs
    the same extras (plus ray for the Ray tests) and runs those blocks, so a missing extra fails CI."""
    install = re.search(r"pip install -e '\.\[([a-z,]+)\]'", README.read_text())
    assert install is not None, "the README has no `pip install -e '.[...]'` set-up line"
    ci = re.search(r"pip install -q -e '\.\[([a-z,]+)\]'", (ROOT / ".ci" / "run").read_text())
    assert ci is not None
    assert set(ci.group(1).split(",")) - {"ray"} == set(install.group(1).split(","))


def test_readme_bash_blocks_run_in_order(tmp_path: Path) -> None:
    blocks = [b for b in all_blocks() if b[0] == "bash"]
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
        where = f"```bash block {k} (README, then the guides)"
        assert run.returncode == 0, f"{where} failed (exit {run.returncode}):\n{script}\n\n{output}"
        if FULL and expected is not None:
            missing = missing_lines(expected, output)
            assert not missing, f"block {k} did not print {missing}; it printed:\n{output}"
    print("\n".join(report))


@pytest.mark.parametrize("lang", ["bash", "sh"])
def test_readme_blocks_name_real_commands(lang: str) -> None:
    """Every `vlnav-*` command the README shows exists (its --help exits 0), run or not."""
    from typer.testing import CliRunner

    from vlnav_data.cli import data, expert, policy, probe, study

    apps = {
        "vlnav-data": data.app,
        "vlnav-expert": expert.app,
        "vlnav-policy": policy.app,
        "vlnav-probe": probe.app,
        "vlnav-study": study.app,
    }
    runner = CliRunner()
    for _, body, _ in (b for b in all_blocks() if b[0] == lang):
        for line in body.splitlines():
            words = line.split("#", 1)[0].split()
            if words and words[0] in apps and len(words) > 1 and not words[1].startswith("-"):
                res = runner.invoke(apps[words[0]], [words[1], "--help"])
                assert res.exit_code == 0, f"README shows `{words[0]} {words[1]}`, which does not exist"
