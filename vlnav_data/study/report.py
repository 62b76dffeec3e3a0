"""``report.md`` of a study (its figures: :mod:`vlnav_data.study.report_figures`).

The main table has the paper's shape (policy, success, interval, steps over successes, min/max,
"efficiency") with this project's corrections: lengths in env steps (the published counter ticked
three times per env step), the efficiency as the *paired* ratio to the expert on the same starts,
Wilson intervals pooled over training seeds, and the across-seed spread beside them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from vlnav_data.study.report_figures import FIGURES_DIR, PROBE_COLUMNS, write_figures

__all__ = ["render_report", "write_figures"]


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
        "95% CI of these runs (Wilson)",
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


def _runs_text(rates: list[float]) -> str:
    return ", ".join(f"{100 * r:.1f}" for r in rates)


def comparison_table(analysis: dict[str, Any]) -> str:
    """One row per pair of arms: per-run success, difference, probability of improvement, p-values, verdict."""
    level = f"{100 * (1 - analysis['alpha']):g}%"
    headers = [
        "A",
        "B",
        "per-run success of A, % (runs)",
        "per-run success of B, %",
        f"A − B ({level} CI over runs)",
        f"P(run of A > run of B) ({level} CI)",
        "p (test)",
        "Holm p",
        "significant",
    ]
    rows = []
    for c in analysis["comparisons"]:
        verdict = {"yes": "**yes**", "no": "no", "too few runs": "*too few runs*"}[c["verdict"]]
        test = "Welch" if c["method"].startswith("welch") else c["method"].split(" (")[0]
        rows.append(
            [
                f"`{c['a']}`",
                f"`{c['b']}`",
                f"{_runs_text(c['run_success_a'])} ({c['num_runs_a']})",
                f"{_runs_text(c['run_success_b'])} ({c['num_runs_b']})",
                f"{100 * c['difference']:+.1f} pts "
                f"({100 * c['difference_low']:+.1f} to {100 * c['difference_high']:+.1f})",
                f"{c['probability_of_improvement']:.2f} "
                f"({c['probability_of_improvement_low']:.2f}–{c['probability_of_improvement_high']:.2f})",
                f"{p_value(c['p_value'])} ({test})",
                p_value(c["p_holm"]),
                verdict,
            ]
        )
    return _table(headers, rows)


def conditional_table(analysis: dict[str, Any]) -> str:
    """The pooled McNemar table of each pair: about these trained policies on these starts, not encoders."""
    headers = ["A", "B", "seeds paired", "only A / only B succeeded", "A − B (Newcombe 95% CI)", "McNemar p"]
    rows = []
    for c in analysis["comparisons"]:
        t = c["conditional"]
        if t is None:
            continue
        rows.append(
            [
                f"`{c['a']}`",
                f"`{c['b']}`",
                ", ".join(str(s) for s in t["train_seeds"]),
                f"{t['table']['a_only']} / {t['table']['b_only']} of {t['num_pairs']}",
                f"{100 * t['difference']:+.1f} pts "
                f"({100 * t['difference_low']:+.1f} to {100 * t['difference_high']:+.1f})",
                p_value(t["p_mcnemar"]),
            ]
        )
    return _table(headers, rows)


def significance_sentences(analysis: dict[str, Any]) -> str:
    """Plain language: which differences are significant after Holm, which are not, which cannot be judged."""
    alpha = analysis["alpha"]
    comparisons = analysis["comparisons"]
    m = len(comparisons)
    sig = [c for c in comparisons if c["verdict"] == "yes"]
    few = [c for c in comparisons if c["verdict"] == "too few runs"]
    not_sig = [c for c in comparisons if c["verdict"] == "no"]
    family = f"Holm's correction over {m} pair{'s' if m != 1 else ''}"
    lines = []
    if sig:
        lines.append(
            f"Significant at {alpha:g} after {family} (training runs as the unit): "
            + "; ".join(
                f"`{c['a']}` {'>' if c['difference'] > 0 else '<'} `{c['b']}` ({100 * c['difference']:+.1f} pts)"
                for c in sig
            )
            + "."
        )
    elif not few:
        lines.append(f"No difference is significant at {alpha:g} after {family}.")
    if few:
        runs = sorted({(c["num_runs_a"], c["num_runs_b"]) for c in few})
        floors = sorted({c["smallest_p_value"] for c in few})
        lines.append(
            f"**Too few runs for any conclusion** on {len(few)} of {m} pairs: with "
            + " / ".join(f"{a} vs {b}" for a, b in runs)
            + " runs the smallest p-value the test can produce is "
            + " / ".join(p_value(f) for f in floors)
            + f", and after {family} no outcome of these runs could reach {alpha:g}. This is not evidence that "
            "the arms are alike; `vlnav-study plan` says how many runs a difference needs: "
            + "; ".join(f"`{c['a']}` vs `{c['b']}` ({100 * c['difference']:+.1f} pts)" for c in few)
            + "."
        )
    if not_sig:
        lines.append(
            "Not significant (these runs cannot tell them apart; more runs might): "
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
            "(seeds × starts) with a Wilson 95% interval, which describes *these* runs only (it ignores how much "
            "a new training run would move the rate); *per-seed mean ± sd* is that spread. "
            "*Paired ratio to expert* divides the policy's mean env steps by the expert's over the "
            'starts both solved (the published "efficiency" was unpaired). SPL uses the straight-line shortest '
            "path. The oracle embeds privileged state: a diagnostic upper bound, not a deployable policy.",
            "",
            "## Which differences are real",
            "",
            "The unit is the **training run**: what a user can repeat is training a policy on an encoder's "
            "features, so each run's success rate over the shared starts is one observation (the starts are "
            "the same for every run, so their difficulty cancels in the difference). *p (test)*: Welch's "
            "t-test on the two arms' run rates (the exact permutation test over run labels when no run of "
            "either arm differs from the others); *Holm p*: Holm's correction over all pairs; the difference "
            "comes with Welch's t interval, which is wide with few runs, as it must be. *P(run of A > run of "
            "B)* is the probability of improvement (Agarwal et al. 2021) with a bootstrap interval over runs. "
            "*Too few runs* means no outcome of runs this few could have been significant after Holm.",
            "",
            comparison_table(analysis) if analysis["comparisons"] else "(one arm only: nothing to compare)",
            "",
            significance_sentences(analysis) if analysis["comparisons"] else "",
            "",
        ]
        if any(c["conditional"] for c in analysis["comparisons"]):
            lines += [
                "### Conditional on these trained policies and these starts (not a verdict about encoders)",
                "",
                "A pair is (training seed k of A, training seed k of B, start j); McNemar's exact test on the "
                "discordant pairs, Newcombe's paired interval. It asks whether *these* trained policies "
                "disagree more than start-to-start chance, ignoring how much a new training run would move a "
                "rate: with run-to-run spread it rejects true nulls most of the time (bench/RESULTS.md), so it "
                "never feeds the verdict above.",
                "",
                conditional_table(analysis),
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
