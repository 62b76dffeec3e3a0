"""Figures and ``report.md`` of ``vlnav-probe spatial`` (the protocol: :mod:`vlnav_data.probes.spatial`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vlnav_data.figures import subplots
from vlnav_data.probes.report import fmt, markdown_table, save_figure, write_report
from vlnav_data.probes.spatial.config import ENCODER_CHECK_TOLERANCE, ControlledResult, SpatialProbeResult


def plot_pairs(dists: dict[str, np.ndarray], path: Path) -> Path:
    """Histograms of the pair protocol's cosine distances, same cell against different cell."""
    fig, ax = subplots(figsize=(6, 4))
    both = np.concatenate([dists["same_cell"], dists["different_cell"]])
    bins = np.linspace(0, float(both.max()) if len(both) else 1.0, 50)
    for key, colour in (("same_cell", "C0"), ("different_cell", "C1")):
        if len(dists[key]):
            ax.hist(dists[key], bins=bins, density=True, alpha=0.5, color=colour, label=key.replace("_", " "))
    ax.set_xlabel("cosine distance between same-colour frames")
    ax.set_ylabel("density")
    if any(len(dists[key]) for key in ("same_cell", "different_cell")):
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no pair evaluated", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("Published pair protocol (valid split)")
    return save_figure(fig, path)


def plot_controlled(c: ControlledResult, curves: dict[str, np.ndarray], path: Path) -> Path:
    fig, axes = subplots(1, 2, figsize=(10, 4))
    for k, colour in enumerate(curves["colours"]):
        axes[0].plot(c.bearing_deg, curves["bearing_per_colour"][k], "-o", ms=3, label=str(colour))
        axes[1].plot(c.distance_m, curves["distance_per_colour"][k], "-o", ms=3, label=str(colour))
    axes[0].set_xlabel("target bearing (deg, + = left); reference = 0°")
    axes[1].set_xlabel("distance to target (m)")
    for ax in axes:
        ax.set_ylabel("cosine distance to the reference view")
        ax.legend(fontsize=7)
    axes[0].set_title("only bearing varies")
    axes[1].set_title("only distance varies")
    return save_figure(fig, path)


def write_spatial_report(out: Path, r: SpatialProbeResult) -> Path:
    p = r.pairs
    pub = r.published_siglip
    table = markdown_table(
        ["", "same cell: n", "mean", "std", "different cell: n", "mean", "std", "gap"],
        [
            [
                f"ours ({r.encoder}, {r.features})",
                p.same_cell.n,
                p.same_cell.mean,
                p.same_cell.std,
                p.different_cell.n,
                p.different_cell.mean,
                p.different_cell.std,
                p.gap,
            ],
            [
                "published SigLIP so400m (spec §5)",
                pub["same_cell"]["n"],
                pub["same_cell"]["mean"],
                pub["same_cell"]["std"],
                pub["different_cell"]["n"],
                pub["different_cell"]["mean"],
                pub["different_cell"]["std"],
                pub["different_cell"]["mean"] - pub["same_cell"]["mean"],
            ],
        ],
        digits=4,
    )
    per_colour = markdown_table(
        ["colour", "same n", "same mean", "different n", "different mean"],
        [
            [c, v["same_cell"].n, v["same_cell"].mean, v["different_cell"].n, v["different_cell"].mean]
            for c, v in p.per_colour.items()
        ],
        digits=4,
    )
    sections = [
        f"Dataset `{r.dataset}`, encoder `{r.encoder}` ({r.features} features).",
        "## Published protocol\n\n"
        f"{p.pairs_drawn} random pairs of valid frames; {p.pairs_evaluated} had the same target colour, came from "
        f"different episodes and showed the target. Position cell: {r.cell_definition}. Effect size (Cohen's d) "
        f"{fmt(p.cohens_d)}.\n\n{table}\n\n{per_colour}",
    ]
    if r.controlled is not None:
        c = r.controlled
        lo, hi = c.left_right_ci95
        verdict = (
            "separates left from right (interval above chance 0.5)"
            if lo > 0.5
            else "does NOT separate left from right reliably (interval includes or is below chance 0.5)"
        )
        sections.append(
            "## Controlled renders\n\n"
            f"{c.num_renders} views of preset `{c.preset}` rendered and embedded (render {c.render_s:.1f} s, "
            f"encode {c.encode_s:.1f} s). Cosine distance to the reference view, averaged over colours and "
            "positions:\n\n"
            + markdown_table(
                ["bearing (deg)", *[f"{v:.0f}" for v in c.bearing_deg]],
                [["cos. dist.", *c.bearing_cosine_distance]],
                digits=4,
            )
            + "\n\n"
            + markdown_table(
                ["distance (m)", *[f"{v:.2f}" for v in c.distance_m]],
                [["cos. dist.", *c.distance_cosine_distance]],
                digits=4,
            )
            + f"\n\nLeft vs right on mirrored views (held-out robot positions): accuracy {c.left_right_accuracy:.3f} "
            f"(Wilson 95% [{lo:.3f}, {hi:.3f}], n = {c.left_right_n}): the embedding {verdict}. Turning in place "
            "also moves the walls in view, so this tests the whole view, not only the ball."
        )
        check = c.encoder_check_max_cosine_distance
        mismatch = (
            "the rebuilt encoder is not the one that built the file (other weights, width, --model-path or dtype), "
            "so the controlled renders describe the rebuilt encoder, not this file's embeddings."
        )
        if check is None:
            line = f"Encoder check: the rebuilt encoder's width differs from the file's embeddings: {mismatch}"
        elif check > ENCODER_CHECK_TOLERANCE:
            line = f"Encoder check: cosine distance {check:.2e} to the stored embeddings, "
            line += f"above {ENCODER_CHECK_TOLERANCE}: {mismatch}"
        else:
            line = (
                f"Encoder check: re-embedding stored frames with the rebuilt encoder gives cosine distance ≤ "
                f"{check:.2e} to the file's embeddings."
            )
        sections.append(line)
    sections.append("\n".join(f"![{f.stem}]({f.name})" for f in r.figures))
    return write_report(out, "Spatial content of the embeddings", sections)
