"""The behaviour-cloning optimisation loop on in-memory arrays.

The whole training set lives on the device as two tensors and every step indexes them with a random
batch of row indices (sampling with replacement, as d3rlpy's transition buffer does): no DataLoader,
no per-step host-to-device copies, no Python-side collation. ``bench/policy.py`` measures the gain
against a DataLoader loop.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from vlnav_data.errors import ConfigError, check_at_least, unknown_name
from vlnav_data.policy.model import BCPolicyNet
from vlnav_data.policy.threads import torch_threads


@dataclass(frozen=True, kw_only=True)
class BCRecipe:
    """Hyper-parameters of a behaviour-cloning run.

    Attributes:
        name: recipe name recorded in the model directory.
        hidden_sizes: hidden layer widths of the MLP.
        learning_rate: Adam learning rate.
        batch_size: rows per gradient step.
        num_steps: gradient steps.
        eval_every_steps: validation period in gradient steps (also the training-curve resolution).
        standardize_inputs: standardise the network's input per dimension with the training split's mean
            and std (stored in ``model.pt``, applied at evaluation); for ``pixels`` the text embedding.
            Off in ``paper`` (the published recipe); on by default for new recipes (bench/RESULTS.md, issue 28).
        loss: ``mse`` on the actions (published) or ``bce_sign``: per-wheel binary cross-entropy on the
            action's sign (bang-bang wheels only; the network then outputs ``2 p - 1``).
        select_by: which checkpoint is kept: ``valid_loss`` (lowest validation loss) or ``closed_loop``
            (most successes on ``selection_episodes`` validation starts, ties broken by validation loss).
        selection_episodes: validation starts run at each check with ``select_by="closed_loop"``.
        lr_schedule: ``constant`` or ``cosine`` (the learning rate decays to 0 over ``num_steps``,
            ``torch.optim.lr_scheduler.CosineAnnealingLR``).
        conditioning: ``pixels`` only: how the instruction enters the conv policy, ``concat`` (its
            embedding joins the image features after the trunk) or ``film`` (it also scales and shifts
            every conv layer's channels, Perez et al. 2018); ignored by the MLPs (their input is one vector).
    """

    name: str
    hidden_sizes: tuple[int, ...] = (256, 256)
    learning_rate: float = 1e-3
    batch_size: int = 100
    num_steps: int = 1_000_000
    eval_every_steps: int = 10_000
    standardize_inputs: bool = True
    loss: str = "mse"
    select_by: str = "valid_loss"
    selection_episodes: int = 10
    lr_schedule: str = "constant"
    conditioning: str = "concat"

    def __post_init__(self) -> None:
        if not self.hidden_sizes or any(h < 1 for h in self.hidden_sizes):
            raise ConfigError(f"hidden_sizes must be positive widths, got {self.hidden_sizes}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ConfigError(f"learning_rate must be a positive number, got {self.learning_rate}")
        check_at_least("batch_size", self.batch_size, 1)
        check_at_least("--steps", self.num_steps, 1)
        check_at_least("eval_every_steps", self.eval_every_steps, 1)
        if self.loss not in LOSSES:
            raise unknown_name("loss", self.loss, LOSSES)
        if self.select_by not in SELECTIONS:
            raise unknown_name("select_by", self.select_by, SELECTIONS)
        if self.lr_schedule not in LR_SCHEDULES:
            raise unknown_name("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        if self.conditioning not in CONDITIONINGS:
            raise unknown_name("conditioning", self.conditioning, CONDITIONINGS)
        check_at_least("selection_episodes", self.selection_episodes, 1)

    @property
    def output(self) -> str:
        """The network's output map for this loss (:data:`vlnav_data.policy.model.OUTPUTS`)."""
        return "sign_logit" if self.loss == "bce_sign" else "tanh"


LOSSES = ("mse", "bce_sign")
SELECTIONS = ("valid_loss", "closed_loop")
LR_SCHEDULES = ("constant", "cosine")
CONDITIONINGS = ("concat", "film")


def lr_scheduler(optimizer: torch.optim.Optimizer, recipe: BCRecipe) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The recipe's learning-rate schedule over ``recipe.num_steps`` steps (None: constant)."""
    if recipe.lr_schedule == "constant":
        return None
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=recipe.num_steps)


# The end-to-end pixels recipe (the sweep in bench/RESULTS.md, issue 28, chose FiLM and the cosine schedule).
_PIXELS = BCRecipe(
    name="pixels",
    hidden_sizes=(256,),
    learning_rate=3e-4,
    batch_size=128,
    num_steps=6_000,
    eval_every_steps=1_000,
    standardize_inputs=True,
    loss="bce_sign",
    select_by="closed_loop",
    selection_episodes=10,
    conditioning="film",
    lr_schedule="cosine",
)


#: ``paper``: the published recipe (reference spec §7.1): d3rlpy BCConfig defaults, 1M steps, 10k steps per
#: epoch, raw inputs. ``paper-std``: the same with standardised inputs. ``pixels``: the end-to-end
#: convolutional policy of issue 28 (Nature CNN, one 256 hidden layer after it, Adam 3e-4, batch 128, BCE on
#: the sign of each wheel, standardised text embedding FiLM-conditioning every conv layer, cosine learning
#: rate over 6,000 steps, the checkpoint with most successes on 10 validation starts); ``pixels-concat``:
#: the first recipe, the text joining only after the trunk at a constant rate (71/100 against 94/100 on
#: the same file, bench/RESULTS.md). Any recipe trains any feature set: the feature set picks the network.
RECIPES: dict[str, BCRecipe] = {
    "paper": BCRecipe(name="paper", standardize_inputs=False),
    "paper-std": BCRecipe(name="paper-std", standardize_inputs=True),
    "pixels": _PIXELS,
    "pixels-concat": dataclasses.replace(_PIXELS, name="pixels-concat", conditioning="concat", lr_schedule="constant"),
}

#: The recipe ``vlnav-policy train`` uses when none is named, by feature kind (``FeatureSpec.kind``).
DEFAULT_RECIPES = {"frozen": "paper", "history": "paper", "pixels": "pixels"}


def get_recipe(name: str) -> BCRecipe:
    """Return a named recipe.

    Raises:
        ConfigError: unknown name (with the valid names).
    """
    if name not in RECIPES:
        raise unknown_name("recipe", name, RECIPES)
    return RECIPES[name]


@dataclass(frozen=True, kw_only=True)
class CurvePoint:
    """One row of the training curve.

    Attributes:
        step: gradient steps done.
        train_loss: mean training MSE over the steps since the previous row.
        valid_loss: MSE over the whole validation set (nan when there is none).
        elapsed_s: wall time since training started.
        valid_successes: closed-loop successes on the validation starts (``select_by="closed_loop"``), else None.
    """

    step: int
    train_loss: float
    valid_loss: float
    elapsed_s: float
    valid_successes: int | None = None


@dataclass(kw_only=True)
class FitResult:
    """What :func:`fit_bc` returns.

    Attributes:
        model: the network holding the best weights (lowest validation loss; last if no validation set).
        best_step: gradient step of the kept weights.
        best_valid_loss: validation loss of the kept weights (nan without validation).
        curve: the training curve, one point per ``eval_every_steps``.
        num_steps: gradient steps actually run.
        train_time_s: wall time of the loop.
        samples_per_s: training rows per second of optimisation (validation and rollouts excluded).
    """

    model: BCPolicyNet
    best_step: int
    best_valid_loss: float
    curve: list[CurvePoint] = field(default_factory=list)
    num_steps: int = 0
    train_time_s: float = 0.0
    samples_per_s: float = math.nan


def loss_terms(raw: torch.Tensor, actions: torch.Tensor, loss: str, output: str = "tanh") -> torch.Tensor:
    """Per-element loss of raw network outputs against expert actions (``mse`` or ``bce_sign``)."""
    if loss == "bce_sign":
        return torch.nn.functional.binary_cross_entropy_with_logits(raw, (actions > 0).to(raw.dtype), reduction="none")
    from vlnav_data.policy.model import output_map

    return (output_map(raw, output) - actions) ** 2


def mse_loss(
    model: BCPolicyNet, features: torch.Tensor, actions: torch.Tensor, batch_rows: int = 65536, loss: str = "mse"
) -> float:
    """Mean loss of the model over a whole set, in chunks (MSE unless ``loss`` names another).

    Args:
        model: the policy network.
        features: float32 (M, E) on the model's device.
        actions: float32 (M, 2) on the same device.
        batch_rows: rows per forward pass.
        loss: ``mse`` or ``bce_sign``.
    """
    if len(features) == 0:
        return float("nan")
    total = torch.zeros((), dtype=torch.float64, device=features.device)
    with torch.no_grad():
        for start in range(0, len(features), batch_rows):
            raw = model.raw(features[start : start + batch_rows])
            total += loss_terms(raw, actions[start : start + batch_rows], loss, model.output).sum(dtype=torch.float64)
    return float(total.item() / actions.numel())


def selection_score(successes: float | None, valid_loss: float) -> tuple[float, float]:
    """Sort key of a checkpoint (lower is better): most closed-loop successes, then lowest validation loss."""
    return (-(successes or 0.0), valid_loss if math.isfinite(valid_loss) else math.inf)


def fit_bc(
    train_features: np.ndarray | torch.Tensor,
    train_actions: np.ndarray | torch.Tensor,
    *,
    recipe: BCRecipe,
    seed: int,
    device: str = "cpu",
    valid_features: np.ndarray | torch.Tensor | None = None,
    valid_actions: np.ndarray | torch.Tensor | None = None,
    init_model: BCPolicyNet | None = None,
    progress: Callable[[CurvePoint], None] | None = None,
    num_threads: int | None = 1,
    history: tuple[np.ndarray, np.ndarray | None] | None = None,
    closed_loop: Callable[[BCPolicyNet], int] | None = None,
    output: str | None = None,
) -> FitResult:
    """Train a BC policy by MSE regression of expert actions on embeddings.

    Args:
        train_features: float (N, E) embeddings.
        train_actions: float (N, 2) expert actions in [-1, 1].
        recipe: hyper-parameters (``num_steps`` gradient steps of ``batch_size`` rows).
        seed: seeds the weight initialisation and the batch sampler (the global RNG is left untouched).
        device: torch device string; the whole dataset is copied there once.
        valid_features: float (M, E) validation embeddings, or None.
        valid_actions: float (M, 2) validation actions, or None.
        init_model: start from these weights (copied) instead of a fresh network (DAgger warm start).
        progress: called with each curve point as it is measured.
        num_threads: torch CPU threads during training (None: torch's default); see ``threads.py``.
        history: ``(train_index, valid_index)`` of :func:`vlnav_data.policy.history.history_index`: the
            network reads each row's K stacked vectors (``K * E`` wide, zeros before the episode's start).
        closed_loop: ``model -> successes`` on validation starts; required by ``select_by="closed_loop"``.
        output: the network's output map (:data:`~vlnav_data.policy.model.OUTPUTS`); None: the recipe's.
            ``affine`` (a file without an arena: actions of any width and range) standardises the actions
            with the training split's statistics, so the loss and the curve are in those units.

    Returns:
        The best weights (by validation loss, or by closed-loop successes) and the curve.
    """
    if recipe.select_by == "closed_loop" and closed_loop is None:
        raise ConfigError(f"recipe '{recipe.name}' selects by closed-loop success; this caller cannot run rollouts")
    with torch_threads(num_threads, device):
        return _fit(
            train_features,
            train_actions,
            recipe,
            seed,
            device,
            valid_features,
            valid_actions,
            init_model,
            progress,
            history,
            closed_loop,
            output or recipe.output,
        )


def _fit(
    train_features: np.ndarray | torch.Tensor,
    train_actions: np.ndarray | torch.Tensor,
    recipe: BCRecipe,
    seed: int,
    device: str,
    valid_features: np.ndarray | torch.Tensor | None,
    valid_actions: np.ndarray | torch.Tensor | None,
    init_model: BCPolicyNet | None,
    progress: Callable[[CurvePoint], None] | None,
    history: tuple[np.ndarray, np.ndarray | None] | None = None,
    closed_loop: Callable[[BCPolicyNet], int] | None = None,
    output: str = "tanh",
) -> FitResult:
    from vlnav_data.policy.history import stack_history

    x = torch.as_tensor(train_features, dtype=torch.float32).to(device)
    y = torch.as_tensor(train_actions, dtype=torch.float32).to(device)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y) or len(x) == 0:
        raise ConfigError(
            "need non-empty features (N, E) and actions (N, 2) with the same N; "
            f"got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    has_valid = valid_features is not None and valid_actions is not None and len(valid_features) > 0
    if history is not None and has_valid:  # the validation set is small: stacked once
        valid_features = stack_history(np.asarray(valid_features, dtype=np.float32), history[1])
    vx = torch.as_tensor(valid_features, dtype=torch.float32).to(device) if has_valid else None
    vy = torch.as_tensor(valid_actions, dtype=torch.float32).to(device) if has_valid else None
    # history: x gains a zero row (index -1 = padding) and batches gather K rows per sample
    hist = torch.as_tensor(history[0], dtype=torch.long).to(device) if history is not None else None
    if hist is not None:
        x = torch.cat([x, torch.zeros((1, x.shape[1]), device=device)])

    def inputs(idx: torch.Tensor) -> torch.Tensor:
        return x[idx] if hist is None else x[hist[idx]].reshape(len(idx), -1)

    width = x.shape[1] * (1 if hist is None else hist.shape[1])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if init_model is None:
            model = BCPolicyNet(width, recipe.hidden_sizes, y.shape[1], output=output)
            if recipe.standardize_inputs:
                mean, std = input_stats(inputs, len(y), width, device)
                model.standardize.set_stats(mean, std)
            if output == "affine":
                y64 = y.to(torch.float64)
                model.set_action_stats(y64.mean(0).float(), y64.std(0, correction=0).float())
        else:  # DAgger warm start: the initial model's statistics are kept (its inputs mean what they meant)
            if init_model.input_dim != width:
                raise ConfigError(f"initial model expects {init_model.input_dim}-D features, data has {width}")
            model = copy.deepcopy(init_model)
    model = model.to(device).train()
    y = model.loss_target(y)  # the actions themselves, except for ``affine`` (standardised once, here)
    vy = model.loss_target(vy) if vy is not None else None
    # fused Adam: one kernel for all parameters (about 2x faster per step on CPU than the foreach path).
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.learning_rate, fused=True)
    scheduler = lr_scheduler(optimizer, recipe)
    generator = torch.Generator(device=device).manual_seed(seed)

    curve: list[CurvePoint] = []
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    best_step, best_valid, best_key = 0, float("inf"), (math.inf, math.inf)
    running = torch.zeros((), device=device)
    since_last = 0
    check_s = 0.0
    start_time = time.perf_counter()
    for step in range(1, recipe.num_steps + 1):
        idx = torch.randint(0, len(y), (recipe.batch_size,), device=device, generator=generator)
        loss = torch.mean(loss_terms(model.raw(inputs(idx)), y[idx], recipe.loss, model.output))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        running += loss.detach()
        since_last += 1
        if step % recipe.eval_every_steps == 0 or step == recipe.num_steps:
            check_start = time.perf_counter()
            model.eval()
            valid_loss = mse_loss(model, vx, vy, loss=recipe.loss) if has_valid else float("nan")
            successes = closed_loop(model) if recipe.select_by == "closed_loop" and closed_loop else None
            model.train()
            point = CurvePoint(
                step=step,
                train_loss=float(running.item() / since_last),
                valid_loss=valid_loss,
                elapsed_s=time.perf_counter() - start_time,
                valid_successes=successes,
            )
            curve.append(point)
            running.zero_()
            since_last = 0
            # Without a validation set the last weights are kept (score = step, always improving).
            key = selection_score(successes, valid_loss if has_valid else -float(step))
            if key < best_key:
                best_key, best_valid, best_step = key, valid_loss, step
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            check_s += time.perf_counter() - check_start
            if progress is not None:
                progress(point)
    train_time_s = time.perf_counter() - start_time
    optim_s = train_time_s - check_s
    model.load_state_dict(best_state)
    model.eval()
    return FitResult(
        model=model,
        best_step=best_step,
        best_valid_loss=best_valid if has_valid else float("nan"),
        curve=curve,
        num_steps=recipe.num_steps,
        train_time_s=train_time_s,
        samples_per_s=recipe.num_steps * recipe.batch_size / optim_s if optim_s > 0 else math.inf,
    )


def input_stats(
    inputs: Callable[[torch.Tensor], torch.Tensor], num_rows: int, width: int, device: str, chunk: int = 8192
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and std (population) of the training inputs, in float64, chunk by chunk."""
    total = torch.zeros(width, dtype=torch.float64, device=device)
    total_sq = torch.zeros(width, dtype=torch.float64, device=device)
    for start in range(0, num_rows, chunk):
        rows = inputs(torch.arange(start, min(num_rows, start + chunk), device=device)).to(torch.float64)
        total += rows.sum(0)
        total_sq += (rows**2).sum(0)
    mean = total / num_rows
    var = (total_sq / num_rows - mean**2).clamp_min(0.0)
    return mean.float(), var.sqrt().float()
