"""Rerun, imported lazily: the ``viz`` extra, one recording sink (an ``.rrd`` file or the web viewer).

Every recording of this package is written the same way: ``OUT.rrd.partial`` is streamed to while the data
are logged (episode by episode, flushed after each: frames do not pile up in memory; Rerun itself keeps a few
kB per logged row for the file's footer, bench/RESULTS.md) and renamed to ``OUT.rrd`` once complete; a failed
run removes the partial file and leaves ``OUT`` as it was.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.errors import ConfigError

RERUN_REQUIREMENT = "rerun-sdk>=0.41,<0.42"
INSTALL_HINT = "pip install 'vlnav-data[viz]'"
#: Timelines of every recording: ``frame`` runs over all logged episodes (episode e starts where e - 1
#: ended, in env steps), ``episode_step`` restarts at 0 in each episode, ``episode`` is the episode's index.
FRAME, EPISODE_STEP, EPISODE = "frame", "episode_step", "episode"
#: The wheel channels of an action, in column order (the ``actions/<wheel>`` series).
WHEELS = ("left_wheel", "right_wheel")
WEB_PORT = 9090
GRPC_PORT = 9876


def import_rerun() -> Any:
    """The ``rerun`` module of the ``viz`` extra.

    Raises:
        ConfigError: rerun-sdk is not installed (or another version than the one tested).
    """
    try:
        import rerun
    except ImportError as exc:
        raise ConfigError(
            f"Rerun recordings need the viz extra ({RERUN_REQUIREMENT}), which is not installed; "
            f"install it with {INSTALL_HINT} (or pip install '{RERUN_REQUIREMENT}')"
        ) from exc
    version = str(getattr(rerun, "__version__", "0"))
    if not version.startswith("0.41."):
        raise ConfigError(
            f"Rerun recordings need {RERUN_REQUIREMENT}, but rerun-sdk {version} is installed; "
            f"install the tested version with {INSTALL_HINT}"
        )
    return rerun


def check_rrd_path(out: Path) -> None:
    """A recording is written to an ``.rrd`` file (the only extension the viewer opens by default).

    Raises:
        ConfigError: another suffix.
    """
    if Path(out).suffix != ".rrd":
        raise ConfigError(f"a Rerun recording is an .rrd file; got '{out}' (name it e.g. '{Path(out).stem}.rrd')")


def check_recording(out: Path) -> None:
    """Before any work: the ``viz`` extra is installed and ``out`` names an ``.rrd`` file.

    Raises:
        ConfigError: otherwise.
    """
    import_rerun()
    check_rrd_path(out)


@contextmanager
def open_recording(
    app_id: str, out: Path | None, blueprint: Any, *, serve: bool = False
) -> Iterator[tuple[Any, str | None]]:
    """A ``RecordingStream`` streaming to ``out`` (via ``out.partial``) or served to the web viewer.

    Args:
        app_id: the recording's application id (the viewer groups recordings by it).
        out: the ``.rrd`` file (``None`` with ``serve``).
        blueprint: the default ``rerun.blueprint.Blueprint`` of the recording.
        serve: serve over gRPC and start Rerun's web viewer on :data:`WEB_PORT` instead of writing a file.

    Yields:
        ``(stream, url)``: the recording stream and, when served, the web viewer's address; on a clean exit
        the file is complete and in place.
    """
    rr = import_rerun()
    rec = rr.RecordingStream(app_id, recording_id=f"{app_id}-{os.getpid()}")
    for timeline in ("log_time", "log_tick"):
        rec.disable_timeline(timeline)  # the data have their own timelines; wall-clock stamps add nothing
    if serve:
        uri = rec.serve_grpc(grpc_port=GRPC_PORT, default_blueprint=blueprint)
        rr.serve_web_viewer(web_port=WEB_PORT, open_browser=False, connect_to=uri)
        from urllib.parse import quote

        yield rec, f"http://localhost:{WEB_PORT}/?url={quote(uri, safe='')}"
        return
    assert out is not None
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    rec.save(partial, default_blueprint=blueprint)
    try:
        yield rec, None
        rec.flush()
        rec.disconnect()
        os.replace(partial, out)
    except BaseException:
        rec.disconnect()
        partial.unlink(missing_ok=True)
        raise


def set_step(rec: Any, frame: int, episode: int, step: int) -> None:
    """Put the stream at one step on the three timelines."""
    rec.set_time(FRAME, sequence=int(frame))
    rec.set_time(EPISODE, sequence=int(episode))
    rec.set_time(EPISODE_STEP, sequence=int(step))


def send_scalars(
    rec: Any, entity: str, frames: np.ndarray, episode: int, steps: np.ndarray, values: np.ndarray
) -> None:
    """One scalar series of an episode in one call (columns, not one log call per step)."""
    rr = import_rerun()
    rec.send_columns(
        entity,
        indexes=[
            rr.TimeColumn(FRAME, sequence=np.asarray(frames, np.int64)),
            rr.TimeColumn(EPISODE, sequence=np.full(len(steps), int(episode), np.int64)),
            rr.TimeColumn(EPISODE_STEP, sequence=np.asarray(steps, np.int64)),
        ],
        columns=rr.Scalars.columns(scalars=np.asarray(values, np.float64)),
    )


def series_style(rec: Any, entity: str, name: str, rgb: tuple[float, float, float] | None = None) -> None:
    """Static name (and colour, floats in [0, 1]) of a scalar series in the plots."""
    rr = import_rerun()
    colors = None if rgb is None else [to_uint8_rgb(rgb)]
    rec.log(entity, rr.SeriesLines(names=[name], colors=colors), static=True)


def side_panels(timeline: str | None = FRAME) -> list[Any]:
    """Blueprint parts: the viewer's blueprint and selection panels folded away, the time panel reduced to its
    playback bar on ``timeline`` (each unfolds with one click), so the views get the window."""
    import rerun.blueprint as rrb

    parts = [rrb.BlueprintPanel(state="collapsed"), rrb.SelectionPanel(state="collapsed")]
    if timeline is not None:
        parts.append(rrb.TimePanel(timeline=timeline, state="collapsed"))
    return parts


def to_uint8_rgb(rgb: Any) -> list[int]:
    """A colour of floats in [0, 1] as ``[r, g, b]`` bytes."""
    return [int(round(255 * float(c))) for c in rgb]


def jpeg(frame: np.ndarray, quality: int = 90) -> Any:
    """One uint8 ``(H, W, 3)`` frame as a JPEG-compressed ``rr.EncodedImage``."""
    rr = import_rerun()
    return rr.Image(np.ascontiguousarray(frame), color_model="RGB").compress(jpeg_quality=quality)


def wait_until_interrupted() -> None:
    """Keep the process (and the served viewer) alive until Ctrl-C."""
    import time

    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        return


def parse_indices(text: str, option: str = "--episodes") -> list[int | tuple[int | None, int | None]]:
    """``"0,3,5:8"`` -> ``[0, 3, (5, 8)]``: indices and ``START:STOP`` ranges (STOP excluded, either side optional).

    Raises:
        ConfigError: anything else.
    """
    import re

    items: list[int | tuple[int | None, int | None]] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d*)\s*(:)?\s*(\d*)\s*", part)
        if m is None or (m.group(2) is None and (not m.group(1) or m.group(3))):
            raise ConfigError(
                f"{option} takes episode indices and START:STOP ranges separated by commas (e.g. 0:10 or 2,5,7), "
                f"got '{text}'"
            )
        if m.group(2) is None:
            items.append(int(m.group(1)))
        else:
            items.append((int(m.group(1)) if m.group(1) else None, int(m.group(3)) if m.group(3) else None))
    return items


def select_indices(
    explicit: tuple[int, ...], spec: str | None, count: int, where: str, option: str = "--episodes"
) -> list[int] | None:
    """The sorted union of ``explicit`` indices and the ``spec`` ranges, checked against ``count`` items.

    Returns:
        The indices, or None when neither names any (the caller's default applies).

    Raises:
        ConfigError: an index or a range past the ``count`` episodes of ``where``, or an empty range.
    """
    items: list[int | tuple[int | None, int | None]] = list(explicit)
    if spec is not None:
        items += parse_indices(spec, option)
    if not items:
        return None
    chosen: set[int] = set()
    for item in items:
        if isinstance(item, tuple):
            start, stop = item[0] or 0, count if item[1] is None else item[1]
            if stop > count or start >= stop:
                raise ConfigError(
                    f"{option} {start}:{stop} is out of range: {where} has {count} episodes (0..{count - 1}); "
                    f"pass START:STOP with START < STOP <= {count}"
                )
            chosen |= set(range(start, stop))
        elif item >= count:
            raise ConfigError(
                f"episode {item} is out of range: {where} has {count} episodes (0..{count - 1}); name one below that"
            )
        else:
            chosen.add(item)
    return sorted(chosen)
