"""The behaviour-cloning networks: an MLP head over a frozen embedding (reference spec §7.1), and the
convolutional policy of ``--features pixels`` (:mod:`vlnav_data.policy.pixels`).

The published student is d3rlpy's default deterministic BC policy: ``E -> 256 -> 256`` with ReLU,
then ``Linear(256, 2)`` and ``tanh``. Its only input is the embedding: no state, no history.

Two recipe settings live in the network so that evaluation applies them exactly as training did:

- input standardisation: ``(x - input_mean) / input_std`` per dimension, the statistics of the training
  split stored as buffers in ``model.pt`` (identity for the ``paper`` recipe and for model directories
  written before the setting existed);
- the output map: ``tanh(z)`` for the MSE loss, ``tanh(z / 2) = 2 sigmoid(z) - 1`` for the per-wheel
  binary cross-entropy on the action's sign (``z`` are the logits of "wheel forward"), and ``affine``
  for a file without an arena, whose actions have any number of dimensions in any range (joint angles,
  a gripper): the network predicts the actions standardised with the training split's per-dimension
  mean and std (buffers ``action_stats.mean``/``.std`` of ``model.pt``; the loss is the MSE in those
  units) and ``forward`` maps them back, ``z * std + mean``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

OUTPUTS = ("tanh", "sign_logit", "affine")


def output_map(raw: torch.Tensor, output: str) -> torch.Tensor:
    """Actions in [-1, 1] from the network's last layer (see the module docstring); ``affine``: the
    standardised actions themselves (what its loss compares)."""
    if output == "affine":
        return raw
    return torch.tanh(raw) if output == "tanh" else torch.tanh(0.5 * raw)


class Standardizer(nn.Module):
    """Per-dimension ``(x - mean) / std`` with stored statistics (identity until :meth:`set_stats`)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(int(dim)))
        self.register_buffer("std", torch.ones(int(dim)))

    def set_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store the training split's statistics; dimensions with std below 1e-6 are only centred."""
        std = torch.where(std < 1e-6, torch.ones_like(std), std)
        self.mean.copy_(mean.to(self.mean))
        self.std.copy_(std.to(self.std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def fill_standardizer_keys(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """A state dict written before standardisation existed gets identity statistics (its recipe had none)."""
    own = model.state_dict()
    missing = {k: v for k, v in own.items() if k not in state and (k.endswith(".mean") or k.endswith(".std"))}
    return {**state, **missing}


class BCPolicyNet(nn.Module):
    """Deterministic MLP policy ``embedding -> wheel actions in [-1, 1]``.

    Args:
        input_dim: embedding width E (``K * E`` for ``history:K``).
        hidden_sizes: widths of the hidden ReLU layers, e.g. ``(256, 256)``.
        action_dim: number of action components (2 wheels; any number for ``affine``).
        output: ``tanh`` (MSE recipes), ``sign_logit`` (BCE on the action's sign) or ``affine`` (standardised
            actions of any range; :meth:`set_action_stats` stores the training split's statistics).
    """

    def __init__(
        self, input_dim: int, hidden_sizes: Sequence[int] = (256, 256), action_dim: int = 2, output: str = "tanh"
    ) -> None:
        super().__init__()
        self.input_dim = int(input_dim)
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.action_dim = int(action_dim)
        self.output = str(output)
        self.standardize = Standardizer(self.input_dim)
        layers: list[nn.Module] = []
        width = self.input_dim
        for hidden in self.hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, self.action_dim))
        self.net = nn.Sequential(*layers)
        if self.output == "affine":  # only here: the state dict of the other outputs is unchanged
            self.action_stats = Standardizer(self.action_dim)

    def set_action_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """``affine``: the training actions' per-dimension mean and std (a constant dimension keeps std 1)."""
        self.action_stats.set_stats(mean, std)

    def loss_target(self, actions: torch.Tensor) -> torch.Tensor:
        """What the loss compares the output map with: the actions, standardised for ``affine``."""
        return self.action_stats(actions) if self.output == "affine" else actions

    def raw(self, features: torch.Tensor) -> torch.Tensor:
        """The last layer's output before the output map (what the loss sees)."""
        return self.net(self.standardize(features))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Map embeddings to actions.

        Args:
            features: float32 (B, E).

        Returns:
            float32 (B, action_dim): in [-1, 1], or in the actions' own units for ``affine``.
        """
        out = output_map(self.raw(features), self.output)
        if self.output == "affine":
            return out * self.action_stats.std + self.action_stats.mean
        return out
