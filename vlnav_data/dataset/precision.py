"""One encoder, one precision: the rule ``build --resume``, ``merge`` and ``embed --resume`` share.

Every encoder entry records the compute dtype (``float32`` / ``bfloat16``) and the device type
(``cpu`` / ``cuda``) that produced its embeddings. Whenever embeddings of one encoder from two origins
would end up in one file (a resumed build, shards being merged, a resumed ``embed``), the origins must
agree; otherwise :func:`combine_precision` refuses with one message, unless the user passes
``--allow-mixed-precision``, in which case the combined entry lists every contributor in
``mixed_precision`` so the mix stays visible to every later reader.

The text tower's attention-mask convention (``preprocessing["text_attention_mask"]``, see
:func:`vlnav_data.names.recorded_text_mask`) is refused outright when two origins disagree on it: the two
conventions give different text embeddings for the same instruction, and a file holds one text table
per encoder, so no flag can make such a mix consistent.

Files written before precision was recorded have ``dtype == device_type == ""``. They open and read as
before. "Unrecorded" counts as a precision of its own: two unrecorded origins combine silently (nothing
new is claimed), but an unrecorded origin and a recorded one are a mix (nobody can tell whether they
agree), refused unless ``--allow-mixed-precision``, which records ``""`` among the contributors.
"""

from __future__ import annotations

import dataclasses

from vlnav_data.dataset.layout import EncoderEntry
from vlnav_data.errors import ConfigError
from vlnav_data.names import recorded_text_mask

Precision = tuple[str, str]
"""``(dtype, device_type)``; ``("", "")`` when the file did not record it."""


def precisions(entry: EncoderEntry) -> tuple[Precision, ...]:
    """Every ``(dtype, device_type)`` that contributed to ``entry``'s embeddings, in order."""
    if entry.mixed_precision:
        return tuple((m["dtype"], m["device_type"]) for m in entry.mixed_precision)
    return ((entry.dtype, entry.device_type),)


def describe_precision(items: tuple[Precision, ...]) -> str:
    """``float32 on cpu``; ``float32 on cpu + bfloat16 on cuda`` for a recorded mix."""
    words = []
    for dtype, device_type in items:
        if not dtype and not device_type:
            words.append("an unrecorded precision (written before vlnav-data recorded it)")
        else:
            words.append(f"{dtype or 'an unrecorded dtype'} on {device_type or 'an unrecorded device'}")
    return " + ".join(words)


def combine_precision(
    held: EncoderEntry, new: EncoderEntry, *, held_by: str, new_by: str, allow_mixed: bool
) -> EncoderEntry:
    """The entry describing ``held``'s embeddings followed by ``new``'s, refusing a mix unless allowed.

    Args:
        held: the entry already in the file (or the first input).
        new: the entry of what is being added (this run, or the next input).
        held_by: subject for the message, e.g. ``"'demos.h5.partial' holds"``.
        new_by: subject for the message, e.g. ``"this run computes"``.
        allow_mixed: ``--allow-mixed-precision`` was given.

    Returns:
        ``held`` unchanged when both origins have one and the same precision; otherwise (allowed) ``held``
        with ``mixed_precision`` listing every contributor in order of first appearance.

    Raises:
        ConfigError: the precisions differ and ``allow_mixed`` is False (the message names the encoder,
            both origins and both precisions, and the two ways out); or both origins record the text
            tower's attention-mask convention and they differ (whatever ``allow_mixed`` says).
    """
    held_mask, new_mask = recorded_text_mask(held.preprocessing), recorded_text_mask(new.preprocessing)
    if held_mask is not None and new_mask is not None and held_mask != new_mask:
        with_mask = {True: "with the attention mask", False: "without it (as SigLIP was trained)"}
        raise ConfigError(
            f"encoder '{held.name}' would mix text conventions: {held_by} text embeddings computed "
            f"{with_mask[held_mask]}, {new_by} them {with_mask[new_mask]}; recompute the older ones with this "
            "version (vlnav-data embed FILE --encoder ... --replace --out NEW) before combining"
        )
    combined = tuple(dict.fromkeys(precisions(held) + precisions(new)))
    if len(combined) == 1:
        return held
    if not allow_mixed:
        raise ConfigError(
            f"encoder '{held.name}' would mix precisions: {held_by} {describe_precision(precisions(held))}, "
            f"{new_by} {describe_precision(precisions(new))}; use the same --device and --encoder-dtype "
            "throughout, or pass --allow-mixed-precision to accept the mix (it is then recorded in the "
            "encoder's entry as mixed_precision)"
        )
    return dataclasses.replace(
        held,
        dtype=combined[0][0],
        device_type=combined[0][1],
        mixed_precision=tuple({"dtype": d, "device_type": t} for d, t in combined),
    )
