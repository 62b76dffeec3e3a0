"""The slim expert checkpoint: actor weights + what is needed to rebuild and check them.

A checkpoint is one ``torch.save`` file (read back with ``weights_only=True``, so loading never runs
pickled code) holding a dict:

=====================  =====================================================================
``format``             ``"vlnav-expert"``
``format_version``     ``1``
``preset``             arena preset the expert was trained on (``"text2nav"``)
``action_mapping``     ``"bang_bang"`` | ``"velocity"``
``feature_names``      the input features (:data:`vlnav_data.expert.features.FEATURE_NAMES`)
``hidden_sizes``       actor hidden widths, e.g. ``[64, 64]``
``activation``         ``"tanh"`` | ``"relu"`` | ``"elu"``
``actor``              state_dict of ``nn.Sequential(Linear, act, ..., Linear)``: the SB3 actor
                       (``mlp_extractor.policy_net`` + ``action_net``); the output is the Gaussian
                       mean, the deterministic action before clipping
``train_config_json``  the :class:`~vlnav_data.expert.config.TrainConfig` that produced it (JSON)
``metrics_json``       the training run's last periodic evaluation (JSON)
=====================  =====================================================================

The critic, the log-std and the optimiser state are not needed to act and are not stored (the full SB3
model is saved beside it as ``sb3_model.zip`` by ``vlnav-expert train``).
"""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vlnav_data.errors import CheckpointError
from vlnav_data.expert.features import FEATURE_NAMES, expert_features, host_state
from vlnav_data.jsonio import compact

FORMAT = "vlnav-expert"
FORMAT_VERSION = 1
CHECKPOINT_FILENAME = "expert.pt"
SHIPPED_DIR = Path(__file__).resolve().parent / "checkpoints"
#: The checkpoint :func:`load_expert` uses by default: PPO on ``text2nav`` (bang_bang), 10 KB, reproduced
#: bit-for-bit (same CPU / torch / SB3 versions) by
#: ``vlnav-expert train --preset text2nav --out runs/expert-text2nav --seed 0 --total-steps 800000``
#: (see ``checkpoints/README.md``).
SHIPPED_CHECKPOINT = SHIPPED_DIR / "text2nav_bang_bang.pt"

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU}
_REQUIRED_KEYS = ("format", "format_version", "preset", "action_mapping", "feature_names", "hidden_sizes")
_REQUIRED_KEYS += ("activation", "actor")


def build_actor(in_dim: int, hidden_sizes: tuple[int, ...], activation: str, out_dim: int = 2) -> nn.Sequential:
    """``nn.Sequential(Linear, act, ..., Linear)`` with the SB3 actor's shapes."""
    layers: list[nn.Module] = []
    width = in_dim
    for h in hidden_sizes:
        layers += [nn.Linear(width, h), _ACTIVATIONS[activation]()]
        width = h
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class ExpertPolicy:
    """A trained expert, callable as ``policy_fn(obs, info) -> actions``.

    Acts on ``obs["privileged_state"]`` only: features (:func:`expert_features`) -> actor MLP -> the
    deterministic (mean) action clipped to [-1, 1]. The forward pass runs in numpy float32 on copies of
    the actor's weights: for a batch of a few hundred rows through a 32x32 MLP, torch's intra-op thread
    pool costs more than the arithmetic (measured 76 ms per call with 2 threads on a busy 2-core machine,
    0.15 ms with 1 thread), and the caller's thread settings are not ours to change. Actions match the
    SB3 policy's deterministic ``predict`` to float32 rounding (~1e-7).

    Attributes:
        preset: arena preset it was trained on.
        action_mapping: ``bang_bang`` | ``velocity``.
        path: the file it was loaded from (None when built in memory).
        train_config: the training config as a dict.
        metrics: the training run's last periodic evaluation.
    """

    def __init__(
        self,
        actor: nn.Sequential,
        *,
        preset: str,
        action_mapping: str,
        hidden_sizes: tuple[int, ...],
        activation: str,
        path: Path | None = None,
        train_config: dict | None = None,
        metrics: dict | None = None,
    ) -> None:
        self.actor = actor.eval()
        self._layers = _numpy_layers(actor)
        self.preset = preset
        self.action_mapping = action_mapping
        self.hidden_sizes = tuple(hidden_sizes)
        self.activation = activation
        self.path = path
        self.train_config = train_config or {}
        self.metrics = metrics or {}

    def actions(self, privileged_state: np.ndarray) -> np.ndarray:
        """Deterministic actions.

        Args:
            privileged_state: float ``(N, D)``.

        Returns:
            float32 ``(N, 2)`` in [-1, 1].
        """
        x = expert_features(privileged_state)
        for weight, bias, activation in self._layers:
            x = x @ weight.T + bias
            if activation is not None:
                x = activation(x)
        return np.clip(x, -1.0, 1.0).astype(np.float32)

    def __call__(self, obs: dict[str, np.ndarray], info: dict[str, Any] | None = None) -> np.ndarray:
        """``policy_fn(obs, info) -> actions (N, 2) float32``; reads ``obs["privileged_state"]``."""
        return self.actions(host_state(obs["privileged_state"]))

    def check_arena(self, preset: str, action_mapping: str) -> None:
        """Raise :class:`CheckpointError` unless the arena runs the task the expert was trained on.

        Presets of the same task in another simulator (``text2nav-mujoco`` for ``text2nav``) match.
        """
        from vlnav_data.sim import task_preset

        if (task_preset(preset), action_mapping) != (task_preset(self.preset), self.action_mapping):
            where = self.path if self.path is not None else "in memory"
            raise CheckpointError(
                f"expert checkpoint ({where}) was trained on preset '{self.preset}' with action mapping "
                f"'{self.action_mapping}', but the arena is preset '{preset}' with action mapping "
                f"'{action_mapping}'; evaluate it on '{self.preset}'/'{self.action_mapping}', or train an "
                f"expert for this arena with `vlnav-expert train --preset {preset}`"
            )

    def to_payload(self) -> dict:
        """The checkpoint dict (see the module docstring)."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "preset": self.preset,
            "action_mapping": self.action_mapping,
            "feature_names": list(FEATURE_NAMES),
            "hidden_sizes": list(self.hidden_sizes),
            "activation": self.activation,
            "actor": {k: v.detach().cpu().clone() for k, v in self.actor.state_dict().items()},
            "train_config_json": compact(self.train_config),
            "metrics_json": compact(self.metrics),
        }

    def save(self, path: Path) -> Path:
        """Write the checkpoint to ``path`` (parents created); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(self.to_payload(), path)
        return path


def _numpy_layers(actor: nn.Sequential) -> list[tuple[np.ndarray, np.ndarray, Any]]:
    """``[(weight (out, in) float32, bias (out,) float32, activation or None), ...]`` of an actor."""
    activations = {
        nn.Tanh: np.tanh,
        nn.ReLU: lambda v: np.maximum(v, 0.0),
        nn.ELU: lambda v: np.where(v > 0, v, np.expm1(v)),
    }
    modules = list(actor)
    layers = []
    for i, m in enumerate(modules):
        if isinstance(m, nn.Linear):
            nxt = modules[i + 1] if i + 1 < len(modules) else None
            act = activations[type(nxt)] if nxt is not None and not isinstance(nxt, nn.Linear) else None
            layers.append(
                (
                    m.weight.detach().cpu().numpy().astype(np.float32),
                    m.bias.detach().cpu().numpy().astype(np.float32),
                    act,
                )
            )
    return layers


def expert_from_sb3(model: Any, *, preset: str, action_mapping: str, train_config: dict | None = None) -> ExpertPolicy:
    """Copy the actor of an SB3 ``PPO`` ``MlpPolicy`` into an :class:`ExpertPolicy`.

    Args:
        model: a ``stable_baselines3.PPO`` whose observation is :func:`expert_features`.
        preset: arena preset it was trained on.
        action_mapping: the arena's action mapping.
        train_config: the training config as a dict (stored in the checkpoint).
    """
    policy = model.policy
    hidden = tuple(m.out_features for m in policy.mlp_extractor.policy_net if isinstance(m, nn.Linear))
    act_modules = [m for m in policy.mlp_extractor.policy_net if not isinstance(m, nn.Linear)]
    activation = next(name for name, cls in _ACTIVATIONS.items() if isinstance(act_modules[0], cls))
    actor = build_actor(len(FEATURE_NAMES), hidden, activation, out_dim=policy.action_net.out_features)
    sources = [m for m in policy.mlp_extractor.policy_net if isinstance(m, nn.Linear)] + [policy.action_net]
    targets = [m for m in actor if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for src, dst in zip(sources, targets, strict=True):
            dst.weight.copy_(src.weight.detach().cpu())
            dst.bias.copy_(src.bias.detach().cpu())
    return ExpertPolicy(
        actor,
        preset=preset,
        action_mapping=action_mapping,
        hidden_sizes=hidden,
        activation=activation,
        train_config=train_config,
    )


def resolve_checkpoint_path(checkpoint: str | Path | None) -> Path:
    """The checkpoint file for ``checkpoint`` (None = the shipped one; a directory = its ``expert.pt``).

    Raises:
        CheckpointError: nothing there.
    """
    if checkpoint is None:
        path = SHIPPED_CHECKPOINT
        if not path.is_file():
            raise CheckpointError(
                f"the shipped expert checkpoint is missing: expected {path}; reinstall vlnav-data or pass "
                "--checkpoint PATH (an expert.pt written by `vlnav-expert train`)"
            )
        return path
    path = Path(checkpoint)
    if path.is_dir():
        inner = path / CHECKPOINT_FILENAME
        if not inner.is_file():
            raise CheckpointError(
                f"expert checkpoint directory {path} has no {CHECKPOINT_FILENAME}; expected the output "
                "directory of `vlnav-expert train` or the path of an expert.pt file"
            )
        return inner
    if not path.is_file():
        raise CheckpointError(
            f"expert checkpoint not found: {path}; expected an {CHECKPOINT_FILENAME} written by "
            "`vlnav-expert train` (or its output directory); omit --checkpoint to use the shipped text2nav expert"
        )
    return path


def load_expert(
    checkpoint: str | Path | None = None, *, preset: str | None = None, action_mapping: str | None = None
) -> ExpertPolicy:
    """Load an expert; by default the shipped ``text2nav`` (bang_bang) PPO expert.

    Args:
        checkpoint: an ``expert.pt`` file, a ``vlnav-expert train`` output directory, or None for the
            shipped checkpoint.
        preset: when given, the arena preset the caller will run; it must match the checkpoint's.
        action_mapping: when given, the arena's action mapping; it must match the checkpoint's.

    Returns:
        :class:`ExpertPolicy`, callable as ``policy_fn(obs, info) -> actions (N, 2) float32``.

    Raises:
        CheckpointError: file missing, not a readable vlnav expert checkpoint, inconsistent, or trained
            for another preset / action mapping.
    """
    path = resolve_checkpoint_path(checkpoint)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(
            f"cannot read expert checkpoint {path}: it is corrupt or not a torch file "
            f"({type(exc).__name__}); expected an {CHECKPOINT_FILENAME} written by `vlnav-expert train`"
        ) from exc
    _check_payload(payload, path)
    hidden = tuple(int(h) for h in payload["hidden_sizes"])
    actor = build_actor(len(FEATURE_NAMES), hidden, payload["activation"])
    try:
        actor.load_state_dict(payload["actor"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"expert checkpoint {path} is inconsistent: its actor weights do not fit hidden_sizes={list(hidden)} "
            f"with {len(FEATURE_NAMES)} inputs ({str(exc).splitlines()[0]}); re-run `vlnav-expert train`"
        ) from exc
    expert = ExpertPolicy(
        actor,
        preset=str(payload["preset"]),
        action_mapping=str(payload["action_mapping"]),
        hidden_sizes=hidden,
        activation=str(payload["activation"]),
        path=path,
        train_config=json.loads(payload.get("train_config_json", "{}")),
        metrics=json.loads(payload.get("metrics_json", "{}")),
    )
    if preset is not None or action_mapping is not None:
        expert.check_arena(preset or expert.preset, action_mapping or expert.action_mapping)
    return expert


def _check_payload(payload: Any, path: Path) -> None:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(
            f"{path} is not a vlnav expert checkpoint (format {found!r}, expected {FORMAT!r}); pass an "
            f"{CHECKPOINT_FILENAME} written by `vlnav-expert train`"
        )
    missing = [k for k in _REQUIRED_KEYS if k not in payload]
    if missing:
        raise CheckpointError(f"expert checkpoint {path} lacks {missing}; re-run `vlnav-expert train`")
    if payload["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"expert checkpoint {path} has format_version {payload['format_version']}, this vlnav-data reads "
            f"{FORMAT_VERSION}; upgrade vlnav-data or re-train with this version"
        )
    if tuple(payload["feature_names"]) != FEATURE_NAMES:
        raise CheckpointError(
            f"expert checkpoint {path} was trained on features {list(payload['feature_names'])}, this "
            f"vlnav-data computes {list(FEATURE_NAMES)}; re-run `vlnav-expert train`"
        )
    if payload["activation"] not in _ACTIVATIONS:
        raise CheckpointError(
            f"expert checkpoint {path} names activation {payload['activation']!r}; expected one of "
            f"{sorted(_ACTIVATIONS)}"
        )
