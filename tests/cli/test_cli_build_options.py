"""`vlnav-data build` options come from BuildConfig: every field has a flag and a TOML key, command() round-trips.

BuildConfig is the one list of build options; the TOML loader (``config_files``) and ``command()`` derive
from its fields, and the CLI keeps explicit Typer options for their help texts. These tests fail when a
field is added without a flag, when the TOML file cannot set it, or when the rebuild command written into a
file does not rebuild the same config.
"""

from __future__ import annotations

import dataclasses
import shlex

import pytest
import typer
from typer.testing import CliRunner

from vlnav_data.cli.data import app
from vlnav_data.collect import BuildConfig, load_build_toml
from vlnav_data.collect.config import OPERATIONAL_FIELDS, build_flag
from vlnav_data.collect.executors import ExecutorConfig
from vlnav_data.errors import ConfigError

runner = CliRunner()

#: One non-default value per field (a field added to BuildConfig without one here fails the first test), as a
#: TOML line.
TOML_LINES = {
    "out": 'out = "x.h5"',
    "preset": 'preset = "text2nav-velocity"',
    "num_episodes": "num_episodes = 7",
    "encoders": 'encoders = ["oracle", "siglip-tiny-random"]',
    "expert": 'expert = "ppo"',
    "expert_checkpoint": 'expert_checkpoint = "ck/expert.pt"',
    "instructions": 'instructions = "color"',
    "action_mapping": 'action_mapping = "velocity"',
    "image_size_px": "image_size_px = 32",
    "max_episode_steps": "max_episode_steps = 300",
    "noise_std": "noise_std = 0.1",
    "valid_fraction": "valid_fraction = 0.25",
    "split_rule": 'split_rule = "coin"',
    "num_envs": "num_envs = 3",
    "seed": "seed = 5",
    "device": 'device = "cpu"',
    "encoder_batch_size": "encoder_batch_size = 4",
    "encoder_dtype": 'encoder_dtype = "fp32"',
    "model_paths": 'model_paths = { siglip-tiny-random = "/models/tiny" }',
    "trust_remote_code": "trust_remote_code = true",
    "shard_index": 'shard = "1/3"',
    "num_shards": 'shard = "1/3"',
    "resume": "resume = true",
    "overwrite": "overwrite = false",
    "writer_queue_size": "writer_queue_size = 2",
    "cross_episode_batching": "cross_episode_batching = true",
    "allow_mixed_precision": "allow_mixed_precision = true",
    "compile": "compile = true",
    "executor": 'executor = "local"',
    "break_lock": "break_lock = true",
    "keep_shards": "keep_shards = true",
}

FIELDS = [f.name for f in dataclasses.fields(BuildConfig)]


def _build_options() -> set[str]:
    command = typer.main.get_command(app).commands["build"]
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def test_every_buildconfig_field_has_a_flag_and_a_toml_line_here():
    assert set(TOML_LINES) == set(FIELDS), "add the new BuildConfig field to TOML_LINES (and give it a flag)"
    missing = [f"{name} ({build_flag(name)})" for name in FIELDS if build_flag(name) not in _build_options()]
    assert not missing, f"BuildConfig fields without a `vlnav-data build` option: {missing}"


def test_every_buildconfig_field_is_a_toml_key(tmp_path):
    path = tmp_path / "all.toml"
    path.write_text("[build]\n" + "\n".join(dict.fromkeys(TOML_LINES.values())) + "\n")
    values = load_build_toml(path)
    assert set(values) == set(FIELDS)
    cfg = BuildConfig(**values)  # every value is valid together
    assert cfg.encoders == ("oracle", "siglip-tiny-random") and cfg.model_paths == (
        ("siglip-tiny-random", "/models/tiny"),
    )
    assert (cfg.shard_index, cfg.num_shards) == (1, 3) and cfg.executor == ExecutorConfig(kind="local")
    defaults = BuildConfig(out="x.h5")
    kept = ("out", "expert", "overwrite", "executor")  # ppo (the default) takes a checkpoint; resume excludes overwrite
    same = [n for n in FIELDS if n not in kept and getattr(cfg, n) == getattr(defaults, n)]
    assert not same, f"the sample values must differ from the defaults: {same}"


@pytest.mark.parametrize(("line", "message"), [("num_envs = 2.5", "num_envs must be an integer, got 2.5 (float)"),
                                              ("trust_remote_code = 1", "trust_remote_code must be true or false"),
                                              ("encoders = [1]", "encoders must be a list of strings")])  # fmt: skip
def test_toml_values_are_checked_against_the_field_types(tmp_path, line, message):
    path = tmp_path / "bad.toml"
    path.write_text(f'out = "x.h5"\n{line}\n')
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_build_toml(path)


def test_the_rebuild_command_rebuilds_the_same_config(tmp_path, monkeypatch):
    """command() -> the CLI's own parsing -> the same stored config (what the file records as rebuild_command)."""
    import vlnav_data.collect

    path = tmp_path / "all.toml"
    path.write_text("[build]\n" + "\n".join(dict.fromkeys(TOML_LINES.values())) + "\n")
    values = {k: v for k, v in load_build_toml(path).items() if k not in OPERATIONAL_FIELDS}
    original = BuildConfig(**values)
    seen = []

    def capture(cfg, *args, **kwargs):
        seen.append(cfg)
        raise ConfigError("captured")

    monkeypatch.setattr(vlnav_data.collect, "build_dataset", capture)
    monkeypatch.chdir(tmp_path)
    argv = shlex.split(original.command())
    assert argv[:2] == ["vlnav-data", "build"]
    res = runner.invoke(app, argv[1:])
    assert res.exit_code == 2 and "error: captured" in res.output, res.output
    assert seen[0].stored() == original.stored()
    assert seen[0] == dataclasses.replace(original, out=seen[0].out)
