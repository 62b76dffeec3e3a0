"""``--features pixels``: a small convolutional policy trained end to end by behaviour cloning on the frames.

Network (:class:`PixelPolicyNet`): the Nature-CNN trunk (conv 32 8x8/4, 64 4x4/2, 64 3x3/1, ReLU) and one
``hidden_sizes[0]``-unit layer on the frame; the instruction's text embedding of the file's encoder
(``/meta/text_embeddings/<enc>[instruction_index]``, standardised with the training split's statistics
when the recipe says so) through 64 units; both concatenated, further ``hidden_sizes[1:]`` layers, then
2 outputs. Frames enter as ``uint8 (B, H, W, 3)`` and are scaled to [0, 1] inside the network
(:func:`frames_to_input`), so training and evaluation share the preprocessing by construction. No
augmentation: random shifts hurt at 64 px (issue 28: 23-47/100 against 94/100 without).

Data (:class:`FrameBlocks`): frames are read from HDF5 episode by episode in file (chunk) order into
blocks of at most ``cache_bytes``; training visits the blocks in a random order, one block in memory at a
time, and samples its batches from the block. When the whole split fits (64 px: 16k frames = 197 MB) it is
read once.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vlnav_data.dataset import DatasetReader, schema
from vlnav_data.errors import ConfigError
from vlnav_data.policy.fit import BCRecipe, CurvePoint, FitResult, loss_terms, lr_scheduler, selection_score
from vlnav_data.policy.model import Standardizer, output_map
from vlnav_data.policy.threads import torch_threads

#: Smallest square frame the Nature-CNN trunk accepts (8x8/4, 4x4/2, 3x3/1 leave one pixel).
MIN_IMAGE_PX = 36
TEXT_UNITS = 64


def frames_to_input(rgb: torch.Tensor, image_hw: tuple[int, int] | None = None) -> torch.Tensor:
    """uint8 ``(B, H, W, 3)`` frames -> float ``(B, 3, H, W)`` in [0, 1], resized (bilinear) to ``image_hw``."""
    x = rgb.permute(0, 3, 1, 2).float().div_(255.0)
    if image_hw is not None and tuple(x.shape[-2:]) != tuple(image_hw):
        x = nn.functional.interpolate(x, size=tuple(image_hw), mode="bilinear", antialias=True, align_corners=False)
    return x


class PixelPolicyNet(nn.Module):
    """Frames and an instruction embedding -> wheel actions in [-1, 1] (see the module docstring).

    Args:
        image_hw: (H, W) of the training frames (both >= :data:`MIN_IMAGE_PX`).
        text_dim: width E of the text embedding.
        hidden_sizes: ``hidden_sizes[0]``: units after the conv trunk; the rest: layers after the concat.
        output: ``tanh`` or ``sign_logit`` (:func:`vlnav_data.policy.model.output_map`).
        conditioning: ``concat`` (the text features join the image features after the trunk) or ``film``
            (they also give a per-channel scale and shift to every conv layer's ReLU output,
            ``h * (1 + gamma) + beta``; the FiLM layer starts at zero, so training starts from ``concat``).
    """

    def __init__(
        self,
        image_hw: Sequence[int],
        text_dim: int,
        hidden_sizes: Sequence[int] = (256,),
        output: str = "tanh",
        conditioning: str = "concat",
    ) -> None:
        super().__init__()
        self.image_hw = (int(image_hw[0]), int(image_hw[1]))
        if min(self.image_hw) < MIN_IMAGE_PX:
            raise ConfigError(
                f"--features pixels needs frames of at least {MIN_IMAGE_PX}x{MIN_IMAGE_PX} px (the conv trunk), got "
                f"{self.image_hw[0]}x{self.image_hw[1]}; build the dataset with --image-size-px {MIN_IMAGE_PX} or more"
            )
        self.input_dim = int(text_dim)
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.output = str(output)
        if conditioning not in ("concat", "film"):
            raise ConfigError(f"conditioning must be 'concat' or 'film', got {conditioning!r}")
        self.conditioning = conditioning
        self.conv = nn.Sequential(  # the Nature-CNN trunk (state-dict names kept from the first release)
            nn.Conv2d(3, 32, 8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.film: nn.Linear | None = None
        if conditioning == "film":
            self.film = nn.Linear(TEXT_UNITS, 2 * sum(c.out_channels for c in self._convs()))
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)
        with torch.no_grad():
            flat = int(self._trunk(torch.zeros(1, 3, *self.image_hw), None).shape[1])
        self.image_fc = nn.Sequential(nn.Linear(flat, self.hidden_sizes[0]), nn.ReLU())
        self.standardize = Standardizer(self.input_dim)
        self.text_fc = nn.Sequential(nn.Linear(self.input_dim, TEXT_UNITS), nn.ReLU())
        layers: list[nn.Module] = []
        width = self.hidden_sizes[0] + TEXT_UNITS
        for hidden in self.hidden_sizes[1:]:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, 2))
        self.head = nn.Sequential(*layers)

    def _convs(self) -> list[nn.Conv2d]:
        return [m for m in self.conv if isinstance(m, nn.Conv2d)]

    def _trunk(self, x: torch.Tensor, text_features: torch.Tensor | None) -> torch.Tensor:
        """Conv layers (FiLM-modulated when ``text_features`` are given and the net is ``film``), flattened."""
        if self.film is None or text_features is None:
            return self.conv(x)
        convs = self._convs()
        films = self.film(text_features).split([c.out_channels for c in convs for _ in (0, 1)], dim=1)
        for i, conv in enumerate(convs):
            x = torch.relu(conv(x))
            gamma, beta = films[2 * i], films[2 * i + 1]
            x = x * (1.0 + gamma[:, :, None, None]) + beta[:, :, None, None]
        return x.flatten(1)

    def raw(self, rgb: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Last-layer outputs from uint8 frames ``(B, H, W, 3)`` of the training size and text ``(B, E)``."""
        text_features = self.text_fc(self.standardize(text))
        image = self.image_fc(self._trunk(frames_to_input(rgb), text_features))
        return self.head(torch.cat([image, text_features], dim=1))

    def forward(self, rgb: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return output_map(self.raw(rgb, text), self.output)


@dataclass
class Block:
    """Rows of consecutive episodes held in memory: frames uint8 (n, H, W, 3), text index (n,), actions (n, 2)."""

    frames: np.ndarray
    text_index: np.ndarray
    actions: np.ndarray


class FrameBlocks:
    """A split's frames in blocks of whole episodes, each at most ``cache_bytes`` (one episode at least).

    Args:
        reader: the open dataset.
        demos: the split's demo names, in file order.
        cache_bytes: frame bytes one block may hold; a split that fits is read once and kept.
    """

    def __init__(self, reader: DatasetReader, demos: Sequence[str], cache_bytes: int) -> None:
        self.reader = reader
        group = reader.file["data"]
        lengths = [int(group[d][schema.ACTIONS].shape[0]) for d in demos]
        shape = group[demos[0]][schema.RGB].shape if demos else (0, 0, 0, 3)
        self.image_hw = (int(shape[1]), int(shape[2]))
        frame_bytes = int(np.prod(shape[1:]))
        self.blocks: list[list[str]] = []
        self.num_rows = int(sum(lengths))
        current: list[str] = []
        size = 0
        for name, n in zip(demos, lengths, strict=True):
            if current and size + n * frame_bytes > cache_bytes:
                self.blocks.append(current)
                current, size = [], 0
            current.append(name)
            size += n * frame_bytes
        if current:
            self.blocks.append(current)
        self._cached: tuple[int, Block] | None = None
        self.bytes_read = 0

    def load(self, i: int) -> Block:
        """Block ``i`` (read from the file unless it is the one in memory)."""
        if self._cached is not None and self._cached[0] == i:
            return self._cached[1]
        self._cached = None  # release the previous block before reading the next
        group = self.reader.file["data"]
        frames, text, actions = [], [], []
        for name in self.blocks[i]:
            demo = group[name]
            frames.append(demo[schema.RGB][()])  # whole episode: its chunks in order
            text.append(np.asarray(demo[schema.INSTRUCTION_INDEX][()], dtype=np.int64).reshape(-1))
            actions.append(np.asarray(demo[schema.ACTIONS][()], dtype=np.float32))
        block = Block(np.concatenate(frames), np.concatenate(text), np.concatenate(actions))
        self.bytes_read += block.frames.nbytes
        self._cached = (i, block)
        return block


def text_index_rows(reader: DatasetReader, demos: Sequence[str]) -> np.ndarray:
    """``instruction_index`` of every row of ``demos`` (cheap: no frames)."""
    group = reader.file["data"]
    parts = [np.asarray(group[d][schema.INSTRUCTION_INDEX][()], dtype=np.int64).reshape(-1) for d in demos]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def fit_pixels(
    train: FrameBlocks,
    valid: FrameBlocks | None,
    text_table: np.ndarray,
    train_text_index: np.ndarray,
    *,
    recipe: BCRecipe,
    seed: int,
    device: str = "cpu",
    progress: Callable[[CurvePoint], None] | None = None,
    num_threads: int | None = 1,
    closed_loop: Callable[[PixelPolicyNet], int] | None = None,
) -> FitResult:
    """Train :class:`PixelPolicyNet` by BC, block by block (see the module docstring).

    Args:
        train / valid: the splits' frame blocks.
        text_table: float32 (K, E) text embeddings of the instruction table.
        train_text_index: instruction index of every training row (for the standardisation statistics).
        recipe: hyper-parameters; ``standardize_inputs`` standardises the text embedding.
        seed: seeds initialisation, block order and batches.
        closed_loop: ``model -> successes`` on validation starts (``select_by="closed_loop"``).

    Returns:
        The kept weights, curve and timings; ``FitResult.samples_per_s`` counts optimisation time only.
    """
    if recipe.select_by == "closed_loop" and closed_loop is None:
        raise ConfigError(f"recipe '{recipe.name}' selects by closed-loop success; this caller cannot run rollouts")
    with torch_threads(num_threads, device):
        table = torch.as_tensor(text_table, dtype=torch.float32, device=device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = PixelPolicyNet(
                train.image_hw, table.shape[1], recipe.hidden_sizes, recipe.output, conditioning=recipe.conditioning
            )
        if recipe.standardize_inputs:
            rows = table[torch.as_tensor(train_text_index, device=device)].double()
            model.standardize.set_stats(rows.mean(0).float(), rows.std(0, unbiased=False).float())
        model = model.to(device).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=recipe.learning_rate)
        scheduler = lr_scheduler(optimizer, recipe)
        rng = np.random.default_rng(seed)
        curve: list[CurvePoint] = []
        best_state = copy.deepcopy(model.state_dict())
        best_step, best_valid, best_key = 0, math.nan, (math.inf, math.inf)
        running, since_last, optim_s = 0.0, 0, 0.0
        start = time.perf_counter()
        step = 0
        while step < recipe.num_steps:
            for b in rng.permutation(len(train.blocks)):
                block = train.load(int(b))
                t0 = time.perf_counter()
                frames = torch.from_numpy(block.frames).to(device)
                text = table[torch.from_numpy(block.text_index).to(device)]
                actions = torch.from_numpy(block.actions).to(device)
                for _ in range(max(1, len(actions) // recipe.batch_size)):
                    idx = torch.from_numpy(rng.integers(0, len(actions), recipe.batch_size)).to(device)
                    loss = loss_terms(model.raw(frames[idx], text[idx]), actions[idx], recipe.loss, model.output).mean()
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    if scheduler is not None:
                        scheduler.step()
                    running += float(loss.detach())
                    since_last += 1
                    step += 1
                    if step % recipe.eval_every_steps == 0 or step == recipe.num_steps:
                        optim_s += time.perf_counter() - t0
                        model.eval()
                        valid_loss = pixel_loss(model, valid, table, recipe.loss, device) if valid else math.nan
                        successes = closed_loop(model) if recipe.select_by == "closed_loop" and closed_loop else None
                        model.train()
                        point = CurvePoint(
                            step=step,
                            train_loss=running / since_last,
                            valid_loss=valid_loss,
                            elapsed_s=time.perf_counter() - start,
                            valid_successes=successes,
                        )
                        curve.append(point)
                        running, since_last = 0.0, 0
                        key = selection_score(successes, valid_loss if valid else -float(step))
                        if key < best_key:
                            best_key, best_valid, best_step = key, valid_loss, step
                            best_state = copy.deepcopy(model.state_dict())
                        if progress is not None:
                            progress(point)
                        t0 = time.perf_counter()
                    if step >= recipe.num_steps:
                        break
                optim_s += time.perf_counter() - t0
                if step >= recipe.num_steps:
                    break
        train_time_s = time.perf_counter() - start
        model.load_state_dict(best_state)
        model.eval()
    return FitResult(
        model=model,  # type: ignore[arg-type]
        best_step=best_step,
        best_valid_loss=best_valid,
        curve=curve,
        num_steps=step,
        train_time_s=train_time_s,
        samples_per_s=step * recipe.batch_size / optim_s if optim_s > 0 else math.inf,
    )


def pixel_loss(model: PixelPolicyNet, valid: FrameBlocks, table: torch.Tensor, loss: str, device: str) -> float:
    """Mean loss over a split's frames, block by block, 512 rows per forward pass."""
    total, count = 0.0, 0
    with torch.no_grad():
        for b in range(len(valid.blocks)):
            block = valid.load(b)
            for s in range(0, len(block.actions), 512):
                frames = torch.from_numpy(block.frames[s : s + 512]).to(device)
                text = table[torch.from_numpy(block.text_index[s : s + 512]).to(device)]
                actions = torch.from_numpy(block.actions[s : s + 512]).to(device)
                total += float(loss_terms(model.raw(frames, text), actions, loss, model.output).sum())
                count += actions.numel()
    return total / count if count else math.nan
