"""``report.md`` and figures of a study (matplotlib's object API: ``Figure``, no global state).

The main table has the paper's shape (policy, success, interval, steps over successes, min/max,
"efficiency") with this project's corrections: lengths in env steps (the published counter ticked
three times per env step), the efficiency as the *paired* ratio to the expert on the same starts,
Wilson intervals pooled over training seeds, and the across-seed spread beside them.
"""

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


def pct(x: float | None, digits: int = 1) -> str:
    """``0.7412`` -> ``74.1%``; ``—`` for None/NaN."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{100 * x:.{digits}f}%"


def num(x: float | None, digits: int = 1) -> str:
    """A number with fixed digits; ``—`` for None/NaN."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:.{digits}f}"


def p_value(p: float) -> str:
    """``0.0012``, ``<1e-6`` or ``1``."""
    if p >= 0.9995:
        return "1"
    if p < 1e-6:
        return "<1e-6"
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def _causes(causes: dict[str, int]) -> str:
    fails = sorted(((k, v) for k, v in causes.items() if k != "success" and v), key=lambda kv: (-kv[1], kv[0]))
    if not fails:
        return "none"
    return ", ".join(f"{v} {k.replace('out_of_bounds_', 'out ').replace('_', ' ')}" for k, v in fails)


def _policy_row(name: str, s: dict[str, Any], seeds: str, ratio: str) -> list[str]:
    succ = s["success"]
    spread = s["across_seeds"]
    seed_text = (
        f"{pct(spread['mean'])} ± {num(100 * spread['std'] if spread['std'] is not None else None)} ({seeds})"
        if spread["n"] > 1
        else f"— ({seeds})"
    )
    lo, hi = s["min_env_steps_successes"], s["max_env_steps_successes"]
    return [
        name,
        f"{pct(succ['rate'])} ({succ['successes']}/{succ['trials']})",
        f"{pct(succ['low'])}–{pct(succ['high'])}",
        seed_text,
        num(s["mean_env_steps_successes"]),
        f"{lo} / {hi}" if lo is not None else "—",
        ratio,
        num(s["spl"], 3),
        _causes(s["termination_causes"]),
    ]


def _table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def main_table(analysis: dict[str, Any]) -> str:
    """The paper-shaped table: experts first, then arms ranked by pooled success."""
    headers = [
        "policy",
        "success (pooled)",
        "95% CI (Wilson)",
        "per-seed mean ± sd (seeds)",
        "env steps (successes)",
        "min / max env steps",
        "paired ratio to expert",
        "SPL",
        "failures",
    ]
    rows = []
    for label, e in analysis["experts"].items():
        name = f"expert ({e['expert']}) on `{label}`" if len(analysis["experts"]) > 1 else f"expert ({e['expert']})"
        rows.append(_policy_row(name, e, "deterministic", "1.00×"))
    for a in analysis["arms"]:
        r = a["paired_step_ratio"]
        ratio = f"{num(r['ratio_of_means'], 2)}× ({r['num_pairs']} pairs)" if r["num_pairs"] else "— (0 pairs)"
        seeds = f"{len(a['train_seeds'])} seed{'s' if len(a['train_seeds']) != 1 else ''}"
        rows.append(_policy_row(f"`{a['label']}` BC", a, seeds, ratio))
    return _table(headers, rows)


def comparison_table(analysis: dict[str, Any]) -> str:
    """One row per pair of arms: paired difference, discordant pairs, McNemar and Holm p-values."""
    headers = ["A", "B", "A − B success (95% CI)", "only A / only B succeeded", "McNemar p", "Holm p", "significant"]
    rows = []
    for c in analysis["comparisons"]:
        t = c["table"]
        rows.append(
            [
                f"`{c['a']}`",
                f"`{c['b']}`",
                f"{100 * c['difference']:+.1f} pts "
                f"({100 * c['difference_low']:+.1f} to {100 * c['difference_high']:+.1f})",
                f"{t['a_only']} / {t['b_only']} of {c['num_pairs']}",
                p_value(c["p_mcnemar"]),
                p_value(c["p_holm"]),
                "**yes**" if c["significant"] else "no",
            ]
        )
    return _table(headers, rows)


def significance_sentences(analysis: dict[str, Any]) -> str:
    """Plain-language list of which differences are significant after Holm and which are not."""
    alpha = analysis["alpha"]
    sig = [c for c in analysis["comparisons"] if c["significant"]]
    not_sig = [c for c in analysis["comparisons"] if not c["significant"]]
    lines = []
    if sig:
        lines.append(
            f"Significant at {alpha:g} after Holm's correction over {len(analysis['comparisons'])} "
            f"pair{'s' if len(analysis['comparisons']) != 1 else ''}: "
            + "; ".join(f"`{c['a']}` > `{c['b']}` ({100 * c['difference']:+.1f} pts)" for c in sig)
            + "."
        )
    else:
        lines.append(f"No difference is significant at {alpha:g} after Holm's correction.")
    if not_sig:
        lines.append(
            "Not significant (the data cannot tell these apart): "
            + "; ".join(f"`{c['a']}` vs `{c['b']}` ({100 * c['difference']:+.1f} pts)" for c in not_sig)
            + "."
        )
    return "\n\n".join(lines)


def probe_table(analysis: dict[str, Any]) -> str:
    """Probe scores side by side: one row per (dataset, encoder, features)."""
    headers = ["dataset", "encoder", "features", *[h for _, h in PROBE_COLUMNS], "kNN action R²"]
    rows = []
    for p in analysis["probes"]:
        lin = p["linear"]
        cells = [num(lin[t]["probe"], 3) if t in lin else "—" for t, _ in PROBE_COLUMNS]
        rows.append([p["dataset"], f"`{p['encoder']}`", p["features"], *cells, num(p["knn"]["r2"], 3)])
    return _table(headers, rows)


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


def render_report(payload: dict[str, Any], figures: list[Path]) -> str:
    """The Markdown text of ``report.md`` from ``result.json``'s payload."""
    analysis = payload["analysis"]
    cfg = payload["config"]
    ev = payload["evaluation"]
    datasets = payload["datasets"]
    progress = payload["progress"]
    lines = ["# Encoder comparison", ""]
    ds_text = "; ".join(
        f"`{k}` ({v['preset'] or 'arena'}, `{v['instructions']}` instructions, {v['expert']} labels, "
        f"{v['num_train_episodes']} train / {v['num_valid_episodes']} valid episodes)"
        for k, v in datasets.items()
    )
    steps = cfg["num_steps"] if cfg["num_steps"] is not None else "the recipe's"
    lines += [
        f"Datasets: {ds_text}. Behaviour cloning: recipe {', '.join(cfg['recipes'])}, {steps} gradient steps, "
        f"training seeds {', '.join(str(s) for s in ev['train_seeds'])}; features {', '.join(cfg['features'])}. "
        f"Every cell was evaluated in closed loop on the same {ev['num_episodes']} seeded starts "
        f"(`--seed {cfg['seed']}`), with the expert on the same starts.",
        "",
    ]
    if not progress["complete"]:
        lines += [
            f"**Partial study: {progress['finished']} of {progress['total']} cells finished.** "
            f"Resume with `{payload['resume_command']}`.",
            "",
        ]
    if analysis["arms"]:
        lines += ["## Behaviour cloning, in the paper's shape", "", main_table(analysis), ""]
        lines += [
            "How to read it: lengths are **env steps** (one 30 Hz control step counted once; the published table "
            'counted a counter that ticked three times per env step, so its 369 / 418 / 472 "steps" are about '
            "123 / 139 / 157 env steps). *Success* pools every training seed's episodes "
            "(seeds × starts) with a Wilson 95% interval; *per-seed mean ± sd* is the spread a new training run "
            "would show. *Paired ratio to expert* divides the policy's mean env steps by the expert's over the "
            'starts both solved (the published "efficiency" was unpaired). SPL uses the straight-line shortest '
            "path. The oracle embeds privileged state: a diagnostic upper bound, not a deployable policy.",
            "",
            "## Which differences are real",
            "",
            "Paired on the same starts: a pair is (training seed k of A, training seed k of B, start j). "
            "McNemar's exact test on the discordant pairs, Holm's correction over all pairs of arms, the "
            "difference in success with Newcombe's paired 95% interval. The test conditions on the trained "
            "policies; the across-seed spread above says how much retraining moves a rate.",
            "",
            comparison_table(analysis) if analysis["comparisons"] else "(one arm only: nothing to compare)",
            "",
            significance_sentences(analysis) if analysis["comparisons"] else "",
            "",
        ]
        not_identical = [k for k, e in analysis["experts"].items() if not e["identical_across_cells"]]
        if not_identical:
            lines += [
                f"Note: the expert's runs differed between cells on {', '.join(not_identical)}; each cell's paired "
                "ratio uses its own expert run, the expert row shows the first.",
                "",
            ]
    if analysis["probes"]:
        lines += [
            "## Probes side by side",
            "",
            probe_table(analysis),
            "",
            "Fit on each file's train split, scored on its valid split (episodes never in both). Linear: ridge "
            "R² (action, bearing as sin/cos, distance) or logistic accuracy (colour, spatial word); each probe "
            "directory holds its controls (shuffled labels, majority/mean). kNN: mean expert action of the "
            f"{cfg['knn_k']} nearest train embeddings (cosine), R² on valid. — = the file cannot supply the label "
            "(e.g. no spatial word in `color` instructions).",
            "",
        ]
    if figures:
        lines += ["## Figures", ""] + [f"![{p.stem}]({FIGURES_DIR}/{p.name})" for p in figures] + [""]
    lines += ["## Cells", "", _cells_table(payload), ""]
    lines += [
        "## Reproduce",
        "",
        "```sh",
        payload["command"],
        "```",
        "",
        f"Wall time of the finished cells: {num(progress['cells_wall_s'] / 60, 1)} min of cell work "
        f"on {', '.join(sorted(progress['hosts'])) or '—'} ({', '.join(sorted(progress['devices'])) or '—'}).",
    ]
    return "\n".join(lines).rstrip() + "\n"


def _cells_table(payload: dict[str, Any]) -> str:
    headers = ["cell", "status", "train steps (best)", "success", "wall"]
    rows = []
    for c in payload["cells"]:
        s = c.get("summary") or {}
        if c["kind"] == "bc" and s:
            t, e = s["train"], s["eval"]
            rows.append(
                [
                    f"`{c['id']}`",
                    "finished",
                    f"{t['num_steps']} ({t['best_step']})",
                    f"{e['successes']}/{e['trials']}",
                    f"{num(c['wall_s'], 0)} s",
                ]
            )
        elif s:
            rows.append([f"`{c['id']}`", "finished", "—", "—", f"{num(c['wall_s'], 0)} s"])
        else:
            rows.append([f"`{c['id']}`", "not run", "—", "—", "—"])
    return _table(headers, rows)
