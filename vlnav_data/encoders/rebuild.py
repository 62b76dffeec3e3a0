"""The spec -> encoder round trip: rebuild the encoder an embedding file records, or refuse.

A file records, per encoder, what produced its numbers (``EncoderSpec`` -> ``encoders_json``; a model
directory's ``config.json`` keeps the same record as ``encoder_spec``). :func:`rebuild_encoder` is the one
function that turns such a record back into a live encoder: evaluation, DAgger and the spatial probe
call it, so every one of them checks the same things:

- the source still exists: a built-in name this version knows, an installed plugin, the ``hf:`` model's
  snapshot in the Hugging Face cache, or its local directory;
- the weights are the recorded ones: the cache snapshot *at the recorded commit* (another revision in
  the cache is refused, naming both), or a local directory whose content hash equals the recorded one
  (no exception for local directories; a revision that identifies nothing -- ``local``, ``unknown`` or
  empty, written before content hashes were recorded -- is refused too), or the plugin's revision;
- the embedding width and the recorded preprocessing (keys both sides have) are equal, the text
  tower's attention-mask convention included (``text_attention_mask``; for files that predate the key,
  read from ``text_inputs``): ``hf:`` SigLIP files embedded with the mask by earlier versions are
  refused, since the text embeddings now follow SigLIP's training (no mask) and would not match;
- remote code runs again only when the caller allows it (``--trust-remote-code``).

By default the encoder computes in the recorded dtype (``float32`` / ``bfloat16``); ``dtype`` overrides.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vlnav_data.encoders import plugins
from vlnav_data.encoders.hf_ref import HF_PREFIX
from vlnav_data.encoders.spec import Encoder, revision_seed
from vlnav_data.encoders.weights import CONTENT_HASH_PREFIX, cached_snapshot, content_hash, download_command
from vlnav_data.errors import EncoderError

RECORDED_DTYPES = {"float32": "fp32", "bfloat16": "bf16"}
"""Recorded compute dtype -> the ``dtype`` argument that reproduces it."""

_COMMIT = re.compile(r"[0-9a-f]{40}")


def recorded_dtype(record: Mapping[str, Any]) -> str:
    """The ``dtype`` argument that reproduces a record's precision (``auto`` when none was recorded)."""
    return RECORDED_DTYPES.get(str(record.get("dtype", "")), "auto")


def recorded_seed(record: Mapping[str, Any]) -> int:
    """The seed of a seeded encoder (``revision`` ``seed-N``: oracle, tiny random models), else 0."""
    seed = revision_seed(str(record.get("revision", "")))
    return 0 if seed is None else seed


def rebuild_encoder(
    record: Mapping[str, Any],
    *,
    device: str = "cpu",
    dtype: str | None = None,
    model_path: str | None = None,
    trust_remote_code: bool = False,
    batch_size: int | None = None,
    num_threads: int | None = None,
    where: str = "the file",
    compile: bool = False,
) -> Encoder:
    """Rebuild the encoder ``record`` describes and check it is the same one (see the module docstring).

    Args:
        record: an ``encoders_json`` entry (``name``, ``dim``, ``source``, ``model_id``, ``revision``,
            ``dtype``, ``trust_remote_code``, ``preprocessing``, ...) or an ``EncoderSpec.to_dict()``.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        dtype: ``fp32``/``bf16``/``auto`` to override the recorded precision; None: the recorded one.
        model_path: a local directory with the weights instead of the recorded one (built-in and local
            ``hf:`` encoders); it must hash to the recorded content hash.
        trust_remote_code: allow a recorded ``trust_remote_code`` model to run its code again.
        batch_size: frames per forward pass (None: the encoder's default).
        num_threads: torch CPU threads (None: torch's default).
        where: how messages name the file (``'demos.h5'``, ``the training data of model 'runs/bc'``).
        compile: ``torch.compile`` the image path where the encoder supports it (two-tower models, see
            :func:`~vlnav_data.encoders.registry.compile_supported`); others run as they are.

    Returns:
        The live :class:`Encoder`.

    Raises:
        EncoderError: a source that is not here, other weights (revision or content hash), another width
            or preprocessing, remote code not allowed; and whatever building the encoder raises.
        ConfigError: a bad device or dtype.
    """
    from vlnav_data.encoders.registry import ENCODER_NAMES, compile_supported, make_encoder

    name = str(record.get("name", ""))
    source = str(record.get("source", "builtin") or "builtin")
    model_id = str(record.get("model_id", ""))
    revision = str(record.get("revision", ""))
    compute = dtype if dtype is not None else recorded_dtype(record)
    common: dict[str, Any] = {
        "device": device,
        "dtype": compute,
        "batch_size": batch_size,
        "num_threads": num_threads,
        "seed": recorded_seed(record),
        "compile": compile and (source == "hf" or (source == "builtin" and compile_supported(name))),
    }
    if record.get("trust_remote_code") and not trust_remote_code:
        raise EncoderError(
            f"{where} was embedded with encoder '{name}' ({source}:{model_id}), whose own repository code ran "
            "(trust_remote_code); rebuilding it runs that code again, which happens only with --trust-remote-code"
        )
    if source == "builtin":
        if name not in ENCODER_NAMES:
            raise EncoderError(
                f"{where} was embedded with built-in encoder '{name}', which this version of vlnav-data does not "
                f"have (built-in: {', '.join(ENCODER_NAMES)}); use the version that wrote the file"
            )
        if _needs_weights(name):
            _check_identifiable(name, revision, where)
            encoder = _rebuild_weights(
                lambda **kw: make_encoder(name, **kw, **common), name, model_id, revision, model_path, where
            )
        else:
            encoder = make_encoder(name, **common)
    elif source == "hf":
        _check_identifiable(name, revision, where)
        is_local = revision.startswith(CONTENT_HASH_PREFIX)
        hub_id = None if is_local else model_id

        def build(model_path: str | None = None, revision: str | None = None) -> Encoder:
            if model_path is not None or is_local:
                target = Path(model_path if model_path is not None else model_id).expanduser().resolve()
                ref = f"{name}=hf:{target}"
            else:
                ref = f"{name}=hf:{hub_id}"
            return make_encoder(ref, revision=revision, trust_remote_code=trust_remote_code, **common)

        encoder = _rebuild_weights(build, name, model_id, revision, model_path, where, label=f"hf:{model_id}")
    elif source == "plugin":
        found = plugins.find_factory(name)
        if found is None:
            raise EncoderError(
                f"{where} was embedded with plugin encoder '{name}' ({model_id}), which is not installed here: "
                f"no entry point '{name}' in group '{plugins.ENTRY_POINT_GROUP}' and no register_encoder('{name}', "
                "...) in this process; install the package that provides it"
            )
        if model_path is not None:
            raise EncoderError(f"plugin encoder '{name}' loads its own weights; drop --encoder-model-path")
        encoder = make_encoder(name, **common)
        if str(encoder.spec.revision) != revision:
            raise mismatch_error(
                where,
                name,
                f"plugin {found[1]}",
                revision,
                str(encoder.spec.revision),
                "Install the plugin version that produced the file, or rebuild the dataset and retrain.",
            )
    else:
        raise EncoderError(f"{where} records encoder '{name}' with source '{source}'; expected builtin, hf or plugin")
    _check_same_output(record, encoder, where)
    return encoder


def _needs_weights(name: str) -> bool:
    return name in ("siglip", "clip", "vilt")


def _check_identifiable(name: str, revision: str, where: str) -> None:
    if revision in ("", "local", "unknown"):
        raise EncoderError(
            f"{where} records encoder '{name}' with revision {revision!r}, which does not identify its weights "
            "(written before commits and content hashes were recorded), so they cannot be checked; rebuild the "
            "dataset with this version (and retrain)"
        )


def _rebuild_weights(
    build: Any, name: str, model_id: str, revision: str, model_path: str | None, where: str, label: str | None = None
) -> Encoder:
    """Build from the recorded commit (cache) or content hash (directory) and compare."""
    label = label or model_id
    if revision.startswith(CONTENT_HASH_PREFIX):
        directory = model_path if model_path is not None else model_id
        advice = (
            "Restore the directory's original files (or pass a copy with --encoder-model-path DIR), or rebuild "
            "the dataset and retrain."
        )
        if Path(directory).expanduser().is_dir():  # compare before loading other weights
            live = content_hash(directory)
            if live != revision:
                raise mismatch_error(where, name, label, revision, live, advice, directory=directory)
        encoder = build(model_path=directory)
        if encoder.spec.revision != revision:
            raise mismatch_error(where, name, label, revision, encoder.spec.revision, advice, directory=directory)
        return encoder
    if model_path is not None or not _COMMIT.fullmatch(revision):
        raise EncoderError(
            f"{where} was embedded with encoder '{name}' ({label}) at Hugging Face commit {revision}; a local "
            "directory cannot be checked against a commit. Put that snapshot in the Hugging Face cache with "
            f"`{download_command(_hub_id(label), revision=revision)}` and drop --encoder-model-path"
        )
    hub_id = _hub_id(label)
    if cached_snapshot(hub_id, revision) is None:
        present = cached_snapshot(hub_id)
        if present is not None:
            raise mismatch_error(
                where,
                name,
                label,
                revision,
                present.name,
                f"Fetch the recorded revision with `{download_command(hub_id, revision=revision)}`, or rebuild the "
                "dataset and retrain.",
            )
    return build(revision=revision)


def _hub_id(label: str) -> str:
    return label.removeprefix(HF_PREFIX)


def mismatch_error(
    where: str, name: str, label: str, recorded: str, live: str, advice: str, directory: str | None = None
) -> EncoderError:
    """The refusal of an encoder whose weights differ from the recorded ones."""
    built = f"{directory} now has" if directory is not None else "the encoder available here has"
    return EncoderError(
        f"{where} was embedded with encoder '{name}' ({label}) at revision {recorded}, but {built} revision {live}; "
        f"its embeddings would differ from the stored ones. {advice}"
    )


def _check_same_output(record: Mapping[str, Any], encoder: Encoder, where: str) -> None:
    live = encoder.spec
    name = str(record.get("name", ""))
    if live.name != name:
        raise EncoderError(f"{where} records encoder '{name}', but the rebuilt encoder is named '{live.name}'")
    dim = int(record.get("dim", 0))
    if int(live.dim) != dim:
        raise EncoderError(
            f"{where} holds {dim}-D embeddings of encoder '{name}', but the rebuilt encoder produces {live.dim}-D "
            "ones; it is a different model. Pass the original weights, or rebuild the dataset and retrain."
        )
    recorded = record.get("preprocessing") or {}
    _check_text_convention(recorded, live.preprocessing, name, where)
    for key in sorted(set(recorded) & set(live.preprocessing)):
        if recorded[key] != live.preprocessing[key]:
            raise EncoderError(
                f"{where} records preprocessing {key}={recorded[key]!r} for encoder '{name}', but the rebuilt "
                f"encoder uses {live.preprocessing[key]!r}; its embeddings would differ from the stored ones. "
                "Use the library versions recorded in the file, or rebuild the dataset and retrain."
            )


def recorded_text_mask(preprocessing: Mapping[str, Any]) -> bool | None:
    """Whether a record's text tower got the attention mask: ``text_attention_mask``, else read from
    ``text_inputs`` (``hf:`` records before the key existed), else None (not recorded: built-in entries
    before the key existed, whose convention never changed)."""
    if "text_attention_mask" in preprocessing:
        return bool(preprocessing["text_attention_mask"])
    if "text_inputs" in preprocessing:
        return "attention_mask" in list(preprocessing["text_inputs"])
    return None


def _check_text_convention(recorded: Mapping[str, Any], live: Mapping[str, Any], name: str, where: str) -> None:
    held, now = recorded_text_mask(recorded), recorded_text_mask(live)
    if held is None or now is None or held == now:
        return
    with_mask = {True: "with the attention mask", False: "without the attention mask"}
    raise EncoderError(
        f"{where} holds text embeddings of encoder '{name}' computed {with_mask[held]}, but this version computes "
        f"them {with_mask[now]} (SigLIP's text tower is run as it was trained: max-length padding, no mask); "
        "the stored and the new text embeddings would not match. Recompute them with this version (vlnav-data "
        "embed FILE --encoder ... --replace --out NEW) and retrain, or use the vlnav-data version that wrote it."
    )
