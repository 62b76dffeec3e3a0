"""The behaviour-cloning network: an MLP head over a frozen embedding (reference spec §7.1).

The published student is d3rlpy's default deterministic BC policy: ``E -> 256 -> 256`` with ReLU,
then ``Linear(256, 2)`` and ``tanh``. Its only input is the embedding: no state, no history.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class BCPolicyNet(nn.Module):
    """Deterministic MLP policy ``embedding -> wheel actions in [-1, 1]``.

    Args:
        input_dim: embedding width E.
        hidden_sizes: widths of the hidden ReLU layers, e.g. ``(256, 256)``.
        action_dim: number of action components (2 wheels).
    """

    def __init__(self, input_dim: int, hidden_sizes: Sequence[int] = (256, 256), action_dim: int = 2) -> None:
        super().__init__()
        self.input_dim = int(input_dim)
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.action_dim = int(action_dim)
        layers: list[nn.Module] = []
        width = self.input_dim
        for hidden in self.hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, self.action_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Map embeddings to actions.

        Args:
            features: float32 (B, E).

        Returns:
            float32 (B, action_dim) in [-1, 1].
        """
        return torch.tanh(self.net(features))
