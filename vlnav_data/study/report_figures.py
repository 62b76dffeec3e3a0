"""The figures of a study report (matplotlib's object API: ``Figure``, no global state)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

FIGURES_DIR = "figures"
CAUSE_COLOURS = {
    "success": "#2ca02c",
    "time_limit": "#7f7f7f",
    "out_of_bounds_front": "#d62728",
    "out_of_bounds_back": "#ff7f0e",
    "out_of_bounds_left": "#9467bd",
    "out_of_bounds_right": "#8c564b",
}
PROBE_COLUMNS = (
    ("action", "action R²"),
    ("bearing", "bearing R²"),
    ("colour", "colour acc."),
    ("spatial_word", "spatial word acc."),
    ("distance", "distance R²"),
)


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def plot_success(analysis: dict[str, Any], path: Path) -> Path:
    """Success per arm: each training seed with its Wilson interval, and the pooled rate with its own."""
    from vlnav_data.eval_summary import success_summary

    arms = analysis["arms"]
    fig = _figure(max(5.0, 1.1 * len(arms) + 2.0), 4.2)
    ax = fig.add_subplot()
    for i, a in enumerate(arms):
        n = a["success"]["trials"] // max(1, len(a["train_seeds"]))
        k = len(a["per_seed_success_rate"])
        for j, (seed, rate) in enumerate(zip(a["train_seeds"], a["per_seed_success_rate"], strict=True)):
            ci = success_summary(round(rate * n), n)
            x = i - 0.25 + 0.3 * (j + 0.5) / k
            ax.errorbar(x, rate, yerr=[[rate - ci["low"]], [ci["high"] - rate]], fmt="o", color="C0", ms=4,
                        capsize=2, label="per seed (Wilson 95%)" if i == 0 and j == 0 else None)  # fmt: skip
            ax.annotate(str(seed), (x, ci["high"]), fontsize=6, ha="center", va="bottom", color="C0")
        s = a["success"]
        ax.errorbar(i + 0.2, s["rate"], yerr=[[s["rate"] - s["low"]], [s["high"] - s["rate"]]], fmt="D",
                    color="k", ms=5, capsize=3, label="pooled (Wilson 95%)" if i == 0 else None)  # fmt: skip
    for e in analysis["experts"].values():
        ax.axhline(e["success"]["rate"], color="C2", ls="--", lw=0.8)
    ax.set_xticks(range(len(arms)), [a["label"] for a in arms], rotation=20, ha="right", fontsize=8)
    ax.set_ylim(-0.02, 1.08)
    ax.set_ylabel("success rate")
    ax.set_title("Closed-loop success per encoder and training seed (dashed: expert, same starts)", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    fig.savefig(path, dpi=110)
    return path


def plot_causes(analysis: dict[str, Any], path: Path) -> Path:
    """Stacked termination causes (share of episodes), experts and arms."""
    rows = [(f"expert ({k})", e["termination_causes"], e["num_episodes"]) for k, e in analysis["experts"].items()]
    rows += [(a["label"], a["termination_causes"], a["num_episodes"]) for a in analysis["arms"]]
    causes = list(CAUSE_COLOURS) + sorted({c for _, tc, _ in rows for c in tc} - set(CAUSE_COLOURS))
    fig = _figure(8.0, 0.9 + 0.4 * len(rows))
    ax = fig.add_subplot()
    left = [0.0] * len(rows)
    for cause in causes:
        widths = [tc.get(cause, 0) / max(1, n) for _, tc, n in rows]
        if not any(widths):
            continue
        ax.barh(range(len(rows)), widths, left=left, color=CAUSE_COLOURS.get(cause), label=cause.replace("_", " "))
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of evaluation episodes (pooled over seeds)")
    ax.set_title("How episodes ended", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.savefig(path, dpi=110)
    return path


def plot_probes(analysis: dict[str, Any], path: Path) -> Path:
    """Probe scores side by side: targets on the x axis, one bar per (dataset, encoder, features)."""
    probes = analysis["probes"]
    columns = [(t, h) for t, h in PROBE_COLUMNS if any(t in p["linear"] for p in probes)]
    columns.append(("knn", "kNN action R²"))
    fig = _figure(max(6.0, 1.4 * len(columns) + 2.0), 4.0)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(probes))
    varying_dataset = len({p["dataset"] for p in probes}) > 1
    varying_features = len({p["features"] for p in probes}) > 1
    lowest = -0.1
    for i, p in enumerate(probes):
        values = [
            p["knn"]["r2"] if t == "knn" else (p["linear"][t]["probe"] if t in p["linear"] else math.nan)
            for t, _ in columns
        ]
        values = [math.nan if v is None else v for v in values]
        name = " / ".join(
            [p["dataset"]] * varying_dataset + [p["encoder"]] + [p["features"]] * varying_features  # type: ignore[operator]
        )
        xs = [j - 0.4 + width * (i + 0.5) for j in range(len(columns))]
        ax.bar(xs, values, width=width, label=name, color=f"C{i % 10}")
        lowest = min([lowest, *[v for v in values if not math.isnan(v)]])
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(range(len(columns)), [h for _, h in columns], fontsize=8)
    ax.set_ylim(max(-1.0, lowest - 0.05), 1.02)  # R² can be very negative; below -1 is clipped
    ax.set_ylabel("valid-split score")
    ax.set_title("Probes on the same train/valid split (linear: ridge / logistic; kNN: mean action of k)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.savefig(path, dpi=110)
    return path


def write_figures(analysis: dict[str, Any], out_dir: Path) -> list[Path]:
    """All figures of a study into ``out_dir/figures`` (those with something to show)."""
    fig_dir = Path(out_dir) / FIGURES_DIR
    fig_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    if analysis["arms"]:
        paths.append(plot_success(analysis, fig_dir / "success_by_seed.png"))
        paths.append(plot_causes(analysis, fig_dir / "termination_causes.png"))
    if analysis["probes"]:
        paths.append(plot_probes(analysis, fig_dir / "probe_scores.png"))
    return paths
