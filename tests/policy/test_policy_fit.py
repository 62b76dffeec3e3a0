"""The BC loop: the paper's architecture, loss goes down, seeding, best checkpoint."""

import numpy as np
import pytest
import torch

from vlnav_data.errors import ConfigError
from vlnav_data.policy.fit import BCRecipe, fit_bc, get_recipe, mse_loss
from vlnav_data.policy.model import BCPolicyNet


def toy_data(n=600, dim=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    w = rng.standard_normal((dim, 2)).astype(np.float32) / np.sqrt(dim)
    return x, np.tanh(2 * x @ w).astype(np.float32)


def test_paper_recipe_is_the_published_one():
    r = get_recipe("paper")
    assert (r.hidden_sizes, r.learning_rate, r.batch_size, r.num_steps) == ((256, 256), 1e-3, 100, 1_000_000)
    net = BCPolicyNet(1152, r.hidden_sizes)
    shapes = [tuple(p.shape) for p in net.parameters()]
    assert shapes == [(256, 1152), (256,), (256, 256), (256,), (2, 256), (2,)]
    out = net(torch.randn(7, 1152) * 100)
    assert out.shape == (7, 2) and out.abs().max() <= 1.0
    with pytest.raises(ConfigError, match="unknown recipe 'papr'.*Did you mean 'paper'"):
        get_recipe("papr")


def test_a_few_steps_lower_the_loss_on_a_fixed_batch():
    x, y = toy_data(n=100)
    recipe = BCRecipe(name="t", hidden_sizes=(64, 64), batch_size=100, num_steps=30, eval_every_steps=30)
    torch.manual_seed(0)
    before = mse_loss(BCPolicyNet(32, (64, 64)).eval(), torch.from_numpy(x), torch.from_numpy(y))
    res = fit_bc(x, y, recipe=recipe, seed=0, valid_features=x, valid_actions=y)
    after = mse_loss(res.model, torch.from_numpy(x), torch.from_numpy(y))
    assert after < 0.5 * before
    assert res.curve[-1].step == 30 and res.num_steps == 30


def test_training_is_seeded_and_keeps_the_best_checkpoint():
    x, y = toy_data()
    recipe = BCRecipe(name="t", hidden_sizes=(32,), learning_rate=3e-2, num_steps=60, eval_every_steps=10)
    a = fit_bc(x[:500], y[:500], recipe=recipe, seed=3, valid_features=x[500:], valid_actions=y[500:])
    b = fit_bc(x[:500], y[:500], recipe=recipe, seed=3, valid_features=x[500:], valid_actions=y[500:])
    assert [p.valid_loss for p in a.curve] == [p.valid_loss for p in b.curve]
    best = min(a.curve, key=lambda p: p.valid_loss)
    assert a.best_step == best.step and a.best_valid_loss == pytest.approx(best.valid_loss)
    # The returned weights are the best ones, not the last ones.
    vx, vy = torch.from_numpy(x[500:]), torch.from_numpy(y[500:])
    assert mse_loss(a.model, vx, vy) == pytest.approx(best.valid_loss, rel=1e-5)
    assert len(a.curve) == 6


def test_bad_shapes_and_recipe_values_are_config_errors():
    x, y = toy_data(n=10)
    with pytest.raises(ConfigError, match="same N"):
        fit_bc(x, y[:5], recipe=BCRecipe(name="t", num_steps=1), seed=0)
    with pytest.raises(ConfigError, match="--steps must be >= 1, got 0"):
        BCRecipe(name="t", num_steps=0)
