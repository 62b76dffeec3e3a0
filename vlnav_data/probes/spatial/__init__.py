"""`vlnav-probe spatial`: does the embedding encode where the target is?

Two tests:

1. **Published protocol** (reference spec §5) on the file's valid rows: random frame pairs with the
   same target colour (and from different episodes), cosine distance between their embeddings,
   grouped by whether the target sits in the same coarse position cell. We have no detector, so the
   "cell" is the target's robot-frame bearing in thirds of the horizontal field of view (left /
   centre / right, frames with the target outside the view are left out) × distance band
   (``distance_edges_m``). Published SigLIP: same cell 0.0245 vs different cell 0.0310.
2. **Controlled renders**: the arena is rendered (``sim.render_views``) from poses that vary *only*
   the target's bearing (the robot turns in place, distance fixed) or *only* its distance (the robot
   moves along the line of sight, bearing 0), embedded with the file's encoder, and cosine distance
   to the reference view (bearing 0 / distance ``reference_distance_m``) is plotted against the
   bearing and distance differences. Left vs right: a logistic-regression classifier on the
   embeddings of mirrored views (bearing +b vs -b at the same spot), trained on some robot positions
   and tested on held-out positions, with a Wilson 95% interval; chance is 0.5. Turning in place also
   moves the walls in the view, so a classifier above chance shows that *something* in the view tells
   left from right, not necessarily the ball.

For the joint features the text is the published analysis prompt ``"Go to the {colour} ball"`` (it
states no direction, so any spatial signal comes from the image).

Pieces, each importing only those above it in this list: ``config.py`` (the config and result types),
``renders.py`` (the controlled renders), ``report.py`` (figures and report.md), ``run.py`` (the pair protocol
and :func:`run_spatial_probe`).
"""

from __future__ import annotations

from vlnav_data.probes.spatial.config import ControlledResult, SpatialProbeConfig, SpatialProbeResult
from vlnav_data.probes.spatial.run import run_spatial_probe

__all__ = ["ControlledResult", "SpatialProbeConfig", "SpatialProbeResult", "run_spatial_probe"]
