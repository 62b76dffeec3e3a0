"""``pixels`` and ``history:K`` from the CLI, input standardisation, frame blocks, and two refusals of eval."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from vlnav_data.cli.policy import app
from vlnav_data.collect import build_dataset
from vlnav_data.dataset import DatasetReader
from vlnav_data.errors import ConfigError
from vlnav_data.eval_summary import PairedStepRatio, format_paired_ratio
from vlnav_data.policy.evaluate import EvalConfig, evaluate_policy
from vlnav_data.policy.features import load_split
from vlnav_data.policy.model_dir import MODEL_FILE, load_model_dir
from vlnav_data.policy.pixels import FrameBlocks
from vlnav_data.sim import arena_config_from_json, make_arena

runner = CliRunner()
PX = 36  # the smallest frame the conv trunk takes


@pytest.fixture(scope="module")
def frames_dataset(tmp_path_factory, small_build):
    out = tmp_path_factory.mktemp("pixels") / "tiny.h5"
    build_dataset(
        small_build(
            out,
            num_episodes=6,
            encoders=("siglip-tiny-random",),
            instructions="color",
            image_size_px=PX,
            max_episode_steps=40,
            valid_fraction=0.34,
            num_envs=3,
            seed=0,
        )
    )
    return out


def _invoke(*args: str):
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res


def test_pixels_and_history_train_and_evaluate_from_the_cli(frames_dataset, tmp_path):
    with DatasetReader(frames_dataset) as r:
        rows = {s: sum(len(r.file["data"][d]["actions"]) for d in r.split(s)) for s in ("train", "valid")}
    _invoke("train", frames_dataset, "--out", tmp_path / "px", "--features", "pixels", "--steps", 4, "--eval-every", 2)
    result = json.loads((tmp_path / "px" / "result.json").read_text())
    assert result["features"] == "pixels" and result["recipe"]["name"] == "pixels"  # the default for pixels
    assert result["selected_by"] == "closed_loop" and result["best_valid_successes"] is not None
    assert result["standardized_inputs"] and result["samples_per_s"] > 0 and result["num_steps"] == 4
    assert (result["num_train_rows"], result["num_valid_rows"]) == (rows["train"], rows["valid"])
    assert result["frame_bytes_read"] == rows["train"] * PX * PX * 3  # the split fits the cache: read once
    curve = (tmp_path / "px" / "curve.csv").read_text().splitlines()
    assert curve[0].endswith(",valid_successes") and len(curve) == 3 and curve[1].split(",")[-1].isdigit()

    res = _invoke("eval", tmp_path / "px", "--out", tmp_path / "px_eval", "--num-episodes", 3, "--num-envs", 3)
    assert "bc (siglip-tiny-random/pixels): success" in res.stdout
    ev = json.loads((tmp_path / "px_eval" / "result.json").read_text())
    assert ev["features"] == "pixels" and ev["student"]["success"]["trials"] == 3

    _invoke("train", frames_dataset, "--out", tmp_path / "h", "--features", "history:3", "--steps", 20)
    result = json.loads((tmp_path / "h" / "result.json").read_text())
    assert result["input_dim"] == 3 * 64 and result["recipe"]["name"] == "paper" and not result["standardized_inputs"]
    _invoke("eval", tmp_path / "h", "--out", tmp_path / "h_eval", "--num-episodes", 2, "--num-envs", 2)
    ev = json.loads((tmp_path / "h_eval" / "result.json").read_text())
    assert ev["features"] == "history:3" and ev["student"]["success"]["trials"] == 2

    # DAgger and kNN read single frozen vectors: both refuse these policies in one line
    res = runner.invoke(app, ["dagger", str(frames_dataset), "--out", str(tmp_path / "d"), "--features", "pixels"])
    assert res.exit_code == 2 and res.stderr.startswith("error: dagger aggregates single-step frozen vectors")
    (tmp_path / "idx").mkdir()
    knn = ["--policy", "knn", "--index", str(tmp_path / "idx")]
    res = runner.invoke(app, ["eval", str(tmp_path / "h"), "--out", str(tmp_path / "k"), *knn])
    assert res.exit_code == 2 and res.stderr.startswith("error: --policy knn averages the actions of stored single")
    assert not (tmp_path / "k").exists()


def test_pixels_policy_refuses_another_camera_size_unless_told_to_resize(frames_dataset, tmp_path):
    _invoke("train", frames_dataset, "--out", tmp_path / "px", "--features", "pixels", "--steps", 2, "--recipe",
            "paper", "--standardize")  # fmt: skip
    model, spec = load_model_dir(tmp_path / "px")
    assert spec.image_hw == (PX, PX) and spec.output == "tanh" and spec.standardized_inputs
    bigger = dataclasses.replace(arena_config_from_json(spec.sim_config), image_height_px=48, image_width_px=48)

    def factory(n):
        return make_arena(bigger, num_envs=n, render=True)

    with pytest.raises(ConfigError) as exc:
        config = EvalConfig(model_dir=tmp_path / "px", out_dir=tmp_path / "e", num_episodes=2)
        evaluate_policy(config, env_factory=factory)
    assert str(exc.value) == (
        f"the pixels policy was trained on {PX}x{PX} frames, arena 'text2nav' renders 48x48; evaluate where it was "
        "trained, or pass --resize-frames to resize the live frames"
    )
    assert not (tmp_path / "e").exists()
    res = evaluate_policy(
        EvalConfig(model_dir=tmp_path / "px", out_dir=tmp_path / "e", num_episodes=2, resize_frames=True),
        env_factory=factory,
    )
    assert res.student.success["trials"] == 2 and res.sim_config["image_height_px"] == 48


def test_standardisation_uses_the_training_split_and_travels_with_the_model(frames_dataset, tmp_path):
    _invoke("train", frames_dataset, "--out", tmp_path / "std", "--recipe", "paper-std", "--steps", 5)
    _invoke("train", frames_dataset, "--out", tmp_path / "raw", "--steps", 5)  # paper: published, raw inputs
    with DatasetReader(frames_dataset) as r:
        train = load_split(r, "siglip-tiny-random", "joint", "train")["features"].astype(np.float64)
    model, spec = load_model_dir(tmp_path / "std")
    assert spec.standardized_inputs
    np.testing.assert_allclose(model.standardize.mean.numpy(), train.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.standardize.std.numpy(), train.std(0), rtol=1e-4, atol=1e-6)
    x = torch.from_numpy(train[:7].astype(np.float32))
    with torch.no_grad():
        z = (x - torch.from_numpy(train.mean(0)).float()) / torch.from_numpy(train.std(0)).float()
        np.testing.assert_allclose(model(x).numpy(), torch.tanh(model.net(z)).numpy(), atol=1e-5)
    raw, raw_spec = load_model_dir(tmp_path / "raw")
    assert not raw_spec.standardized_inputs
    assert raw.standardize.mean.abs().max() == 0 and (raw.standardize.std == 1).all()
    # a model.pt written before standardisation existed (no statistics) loads as raw inputs
    shutil.copytree(tmp_path / "raw", tmp_path / "old")
    state = torch.load(tmp_path / "old" / MODEL_FILE, weights_only=True)
    torch.save({k: v for k, v in state.items() if not k.startswith("standardize.")}, tmp_path / "old" / MODEL_FILE)
    old, _ = load_model_dir(tmp_path / "old")
    with torch.no_grad():
        np.testing.assert_array_equal(old(x).numpy(), raw(x).numpy())


def test_frame_blocks_stay_under_the_cache_and_keep_file_order(frames_dataset):
    with DatasetReader(frames_dataset) as r:
        names = r.split("train")
        lengths = [len(r.file["data"][d]["actions"]) for d in names]
        cache = max(lengths) * PX * PX * 3 + 1  # one episode at most, so every block holds one or two
        blocks = FrameBlocks(r, names, cache)
        assert [d for b in blocks.blocks for d in b] == list(names) and len(blocks.blocks) >= len(names) // 2
        frames = np.concatenate([blocks.load(i).frames for i in range(len(blocks.blocks))])
        for i in range(len(blocks.blocks)):
            assert blocks.load(i).frames.nbytes <= cache
        np.testing.assert_array_equal(frames, np.concatenate([r.file["data"][d]["obs/rgb"][()] for d in names]))


def test_knn_index_of_another_encoder_is_refused_before_anything_loads(oracle_model_dir, tmp_path, monkeypatch):
    import vlnav_data.encoders
    import vlnav_data.policy.model_dir

    def must_not_run(*args, **kwargs):
        raise AssertionError("loaded before the kNN index was checked")

    monkeypatch.setattr(vlnav_data.encoders, "rebuild_encoder", must_not_run)
    monkeypatch.setattr(vlnav_data.policy.model_dir, "load_model_dir", must_not_run)
    index = tmp_path / "idx"
    index.mkdir()
    (index / "knn_meta.json").write_text(json.dumps({"encoder": "siglip", "features": "joint", "k": 8, "dim": 1152}))
    res = runner.invoke(
        app, ["eval", str(oracle_model_dir), "--out", str(tmp_path / "e"), "--policy", "knn", "--index", str(index)]
    )
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr == (
        f"error: kNN index '{index}' holds 'siglip' joint features, but model '{oracle_model_dir}' uses 'oracle' "
        "joint; build the index with `vlnav-probe knn FILE --encoder oracle`\n"
    )
    assert not (tmp_path / "e").exists()


def test_no_success_prints_no_paired_ratio(oracle_model_dir, tmp_path):
    model_dir = tmp_path / "spin"
    shutil.copytree(oracle_model_dir, model_dir)
    state = torch.load(model_dir / MODEL_FILE, weights_only=True)
    last = max(k for k in state if k.startswith("net.") and k.endswith(".weight"))
    state[last] = torch.zeros_like(state[last])
    state[last.replace("weight", "bias")] = torch.tensor([5.0, -5.0])  # spins in place: never reaches a sphere
    torch.save(state, model_dir / MODEL_FILE)
    res = _invoke("eval", model_dir, "--out", tmp_path / "e", "--num-episodes", 2, "--num-envs", 2)
    assert "success 0/2" in res.stdout and "n/ax" not in res.stdout
    assert "no paired ratio: no start solved by both student and expert" in res.stdout


def test_paired_ratio_phrase():
    ratio = PairedStepRatio(
        policy="student",
        reference="expert",
        num_pairs=3,
        ratio_of_means=1.234,
        median_of_ratios=1.2,
        policy_mean_env_steps=120.0,
        reference_mean_env_steps=97.2,
    )
    assert format_paired_ratio(ratio) == "paired ratio 1.23x over 3 pairs"
    none = dataclasses.replace(ratio, num_pairs=0, ratio_of_means=None, median_of_ratios=None)
    assert format_paired_ratio(none) == "no paired ratio: no start solved by both student and expert"


def test_film_starts_as_concat_and_round_trips_through_the_model_dir(frames_dataset, tmp_path):
    from vlnav_data.policy.pixels import PixelPolicyNet

    torch.manual_seed(0)
    film = PixelPolicyNet((PX, PX), 8, (16,), "sign_logit", conditioning="film")
    concat = PixelPolicyNet((PX, PX), 8, (16,), "sign_logit")
    concat.load_state_dict({k: v for k, v in film.state_dict().items() if not k.startswith("film.")})
    rgb = torch.randint(0, 256, (5, PX, PX, 3), dtype=torch.uint8)
    text = torch.randn(5, 8)
    assert torch.equal(film.raw(rgb, text), concat.raw(rgb, text))  # zero-initialised FiLM: the identity
    with torch.no_grad():
        film.film.bias[0] = 1.0  # the first channel of the first conv layer doubled
    assert not torch.equal(film.raw(rgb, text), concat.raw(rgb, text))

    _invoke("train", frames_dataset, "--out", tmp_path / "f", "--features", "pixels", "--recipe", "pixels",
            "--steps", 4, "--eval-every", 2)  # fmt: skip
    config = json.loads((tmp_path / "f" / "config.json").read_text())
    assert config["conditioning"] == "film" and config["train_config"]["recipe"]["lr_schedule"] == "cosine"
    model, spec = load_model_dir(tmp_path / "f")
    assert spec.conditioning == "film" and model.film is not None


def test_cosine_schedule_decays_to_zero_over_the_recipe_steps():
    from vlnav_data.policy.fit import BCRecipe, lr_scheduler

    recipe = BCRecipe(name="t", learning_rate=1e-3, num_steps=100, lr_schedule="cosine")
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=recipe.learning_rate)
    scheduler = lr_scheduler(optimizer, recipe)
    lrs = []
    for _ in range(recipe.num_steps):
        optimizer.step()
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs[49] == pytest.approx(5e-4, rel=1e-6) and lrs[-1] == pytest.approx(0.0, abs=1e-12)
    assert lr_scheduler(optimizer, dataclasses.replace(recipe, lr_schedule="constant")) is None
    with pytest.raises(ConfigError, match="lr_schedule"):
        BCRecipe(name="t", lr_schedule="linear")
