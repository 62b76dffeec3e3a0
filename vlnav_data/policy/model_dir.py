"""The model directory ``vlnav-policy train`` writes and ``eval``/``dagger`` read.

Layout::

    DIR/model.pt      best weights (a plain state dict, loaded with weights_only=True)
    DIR/config.json   what the policy needs at evaluation: encoder spec, feature set, input keys,
                      network sizes, the arena config of the dataset, the train config and recipe
    DIR/curve.csv     step, train_loss, valid_loss, elapsed_s, valid_successes (closed-loop selection only)
    DIR/curve.png     the same, plotted
    DIR/result.json   the training summary
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlnav_data.errors import CheckpointError, ConfigError
from vlnav_data.figures import save_png, subplots
from vlnav_data.jsonio import write_json_atomic
from vlnav_data.policy.features import FeatureSpec, check_student_inputs, parse_features
from vlnav_data.policy.fit import CurvePoint
from vlnav_data.policy.model import OUTPUTS, BCPolicyNet, fill_standardizer_keys

MODEL_FILE = "model.pt"
CONFIG_FILE = "config.json"
CURVE_CSV = "curve.csv"
CURVE_PNG = "curve.png"
MODEL_DIR_FORMAT = "vlnav-policy-bc"
MODEL_DIR_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class PolicySpec:
    """Everything needed to rebuild and feed a trained policy (``config.json``).

    Attributes:
        encoder: encoder name (as in the dataset).
        encoder_spec: the dataset's record of that encoder (``encoders_json`` entry).
        features: ``joint``, ``image``, ``text``, ``pixels`` or ``history:K[:BASE]``.
        input_keys: dataset keys the input was read from (never ``privileged_*``).
        input_dim: width of the vector input: E, ``K * E`` for ``history:K``, the text embedding's E for
            ``pixels``.
        hidden_sizes: MLP hidden widths (``pixels``: units after the conv trunk, then after the concat).
        sim_config: the arena config the dataset was recorded in (``sim_config_json``).
        dataset: path of the training dataset.
        dataset_expert: the ``expert`` attribute of the dataset's demos (``ppo``, ``pursuit``...).
        expert_checkpoint: the expert checkpoint named in the dataset's build config, if any.
        train_episode_seeds: seeds of the training episodes (evaluation reports overlap with them).
        train_config: the resolved training config and recipe.
        image_hw: (H, W) of the training frames (``pixels`` only; None otherwise).
        output: the network's output map (``tanh`` or ``sign_logit``, from the recipe's loss).
        standardized_inputs: the network standardises its vector input with stored training statistics.
        conditioning: ``pixels`` only: how the instruction enters the conv policy (``concat`` or ``film``).
        action_dim: width of the action (2 wheels in the arena; an imported file's own width).
        action_names: one name per action dimension (``features_json["actions"]["names"]``).
        source: an imported file's provenance (its ``source_json``: ``kind``, id, revision), None for an
            arena file. A model trained on a file without an arena (``sim_config`` is ``NO_ARENA``) records
            these three in ``config.json``; an arena model's ``config.json`` is unchanged.
    """

    encoder: str
    encoder_spec: dict[str, Any]
    features: str
    input_keys: tuple[str, ...]
    input_dim: int
    hidden_sizes: tuple[int, ...]
    sim_config: dict[str, Any]
    dataset: str
    dataset_expert: str
    expert_checkpoint: str | None
    train_episode_seeds: tuple[int, ...] = ()
    train_config: dict[str, Any] = field(default_factory=dict)
    image_hw: tuple[int, int] | None = None
    output: str = "tanh"
    standardized_inputs: bool = False
    conditioning: str = "concat"
    action_dim: int = 2
    action_names: tuple[str, ...] = ()
    source: dict[str, Any] | None = None

    @property
    def has_arena(self) -> bool:
        """False for a model trained on a file without an arena (imported: evaluated offline only)."""
        from vlnav_data.dataset.schema import NO_ARENA

        return self.sim_config != NO_ARENA

    @property
    def feature_spec(self) -> FeatureSpec:
        """The parsed feature set."""
        return parse_features(self.features)

    @property
    def embedding_dim(self) -> int:
        """Width of one embedding the live encoder must produce (``input_dim`` over the history length)."""
        return self.input_dim // self.feature_spec.history_steps

    def to_json(self) -> dict[str, Any]:
        """JSON payload of ``config.json``."""
        imported = (
            {}
            if self.has_arena
            else {"action_dim": self.action_dim, "action_names": list(self.action_names), "source": self.source}
        )
        return {
            "format": MODEL_DIR_FORMAT,
            "format_version": MODEL_DIR_VERSION,
            "encoder": self.encoder,
            "encoder_spec": self.encoder_spec,
            "features": self.features,
            "input_keys": list(self.input_keys),
            "input_dim": self.input_dim,
            "hidden_sizes": list(self.hidden_sizes),
            "sim_config": self.sim_config,
            "dataset": self.dataset,
            "dataset_expert": self.dataset_expert,
            "expert_checkpoint": self.expert_checkpoint,
            "train_episode_seeds": list(self.train_episode_seeds),
            "train_config": self.train_config,
            "image_hw": list(self.image_hw) if self.image_hw is not None else None,
            "output": self.output,
            "standardized_inputs": self.standardized_inputs,
            "conditioning": self.conditioning,
            **imported,
        }


def save_model_dir(out_dir: Path, model: Any, spec: PolicySpec, curve: list[CurvePoint]) -> None:
    """Write weights, ``config.json``, the curve CSV and PNG into ``out_dir`` (created)."""
    import torch

    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, out_dir / MODEL_FILE)
    write_json_atomic(out_dir / CONFIG_FILE, spec.to_json())
    write_curve(out_dir, curve)


def write_curve(out_dir: Path, curve: list[CurvePoint]) -> None:
    """``curve.csv`` and ``curve.png`` (training and validation MSE against gradient steps)."""
    lines = ["step,train_loss,valid_loss,elapsed_s,valid_successes"]
    lines += [
        f"{p.step},{p.train_loss:.6g},{p.valid_loss:.6g},{p.elapsed_s:.3f},"
        f"{'' if p.valid_successes is None else p.valid_successes}"
        for p in curve
    ]
    (out_dir / CURVE_CSV).write_text("\n".join(lines) + "\n")
    fig, ax = subplots(figsize=(6, 4))
    steps = [p.step for p in curve]
    ax.plot(steps, [p.train_loss for p in curve], label="train MSE")
    ax.plot(steps, [p.valid_loss for p in curve], label="valid MSE")
    ax.set_xlabel("gradient steps")
    ax.set_ylabel("MSE")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    save_png(fig, out_dir / CURVE_PNG, dpi=100)


def read_policy_spec(model_dir: Path) -> PolicySpec:
    """Read and check ``config.json`` of a model directory.

    Raises:
        CheckpointError: missing directory or file, another format, corrupt or privileged inputs.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise CheckpointError(
            f"model directory '{model_dir}' does not exist; expected a directory written by `vlnav-policy train`"
        )
    for name in (CONFIG_FILE, MODEL_FILE):
        if not (model_dir / name).is_file():
            raise CheckpointError(
                f"model directory '{model_dir}' has no {name}; expected a directory written by "
                "`vlnav-policy train` (model.pt and config.json). Re-run training into it."
            )
    try:
        raw = json.loads((model_dir / CONFIG_FILE).read_text())
    except ValueError as exc:
        raise CheckpointError(f"'{model_dir / CONFIG_FILE}' is not valid JSON ({exc}); re-run training") from exc
    if not isinstance(raw, dict) or raw.get("format") != MODEL_DIR_FORMAT:
        got = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
        raise CheckpointError(
            f"'{model_dir / CONFIG_FILE}' is not a {MODEL_DIR_FORMAT} config (format: {got!r}); "
            "point to a directory written by `vlnav-policy train`"
        )
    try:
        spec = PolicySpec(
            encoder=str(raw["encoder"]),
            encoder_spec=dict(raw["encoder_spec"]),
            features=str(raw["features"]),
            input_keys=tuple(raw["input_keys"]),
            input_dim=int(raw["input_dim"]),
            hidden_sizes=tuple(int(h) for h in raw["hidden_sizes"]),
            sim_config=dict(raw["sim_config"]),
            dataset=str(raw["dataset"]),
            dataset_expert=str(raw["dataset_expert"]),
            expert_checkpoint=raw.get("expert_checkpoint"),
            train_episode_seeds=tuple(int(s) for s in raw.get("train_episode_seeds", ())),
            train_config=dict(raw.get("train_config", {})),
            image_hw=tuple(int(v) for v in raw["image_hw"]) if raw.get("image_hw") else None,  # type: ignore[arg-type]
            output=str(raw.get("output", "tanh")),
            standardized_inputs=bool(raw.get("standardized_inputs", False)),
            conditioning=str(raw.get("conditioning", "concat")),
            action_dim=int(raw.get("action_dim", 2)),
            action_names=tuple(str(n) for n in raw.get("action_names") or ()),
            source=dict(raw["source"]) if isinstance(raw.get("source"), dict) else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"'{model_dir / CONFIG_FILE}' lacks or mangles field {exc}; re-run training") from exc
    try:
        kind = spec.feature_spec.kind
    except ConfigError as exc:
        raise CheckpointError(f"'{model_dir / CONFIG_FILE}': unknown feature set '{spec.features}'") from exc
    if spec.output not in OUTPUTS or (kind == "pixels") != (spec.image_hw is not None):
        raise CheckpointError(
            f"'{model_dir / CONFIG_FILE}': output '{spec.output}', image_hw {spec.image_hw} do not fit features "
            f"'{spec.features}'; re-run training"
        )
    check_student_inputs(spec.input_keys)
    return spec


def build_network(spec: PolicySpec) -> Any:
    """An untrained network of the shape ``spec`` records (MLP, or the conv policy for ``pixels``)."""
    if spec.image_hw is not None:
        from vlnav_data.policy.pixels import PixelPolicyNet

        return PixelPolicyNet(
            spec.image_hw, spec.input_dim, spec.hidden_sizes, spec.output, conditioning=spec.conditioning
        )
    return BCPolicyNet(spec.input_dim, spec.hidden_sizes, spec.action_dim, output=spec.output)


def load_model_dir(model_dir: Path, device: str = "cpu") -> tuple[Any, PolicySpec]:
    """Rebuild the trained network and its spec.

    Raises:
        CheckpointError: missing/corrupt files or weights that do not fit the recorded sizes.
    """
    import torch

    spec = read_policy_spec(model_dir)
    try:
        state = torch.load(Path(model_dir) / MODEL_FILE, map_location=device, weights_only=True)
        model = build_network(spec)
        model.load_state_dict(fill_standardizer_keys(state, model))
    except (RuntimeError, OSError, KeyError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"'{Path(model_dir) / MODEL_FILE}' does not hold weights of a {spec.input_dim}->"
            f"{'->'.join(map(str, spec.hidden_sizes))}->{spec.action_dim} {'conv policy' if spec.image_hw else 'MLP'} "
            f"({first}); "
            "re-run training"
        ) from exc
    return model.to(device).eval(), spec
