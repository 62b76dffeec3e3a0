"""`vlnav-data encoders`, hf: and plugin encoders through build -> train -> eval, and their error lines."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from vlnav_data.cli.data import app as data_app
from vlnav_data.cli.policy import app as policy_app
from vlnav_data.dataset import DatasetReader
from vlnav_data.encoders.weights import content_hash

runner = CliRunner()
SMALL_BUILD = [
    "--num-episodes", "4", "--expert", "pursuit", "--image-size-px", "32", "--max-episode-steps", "30",
    "--num-envs", "2", "--device", "cpu", "--seed", "1", "--no-progress", "--valid-fraction", "0.25",
]  # fmt: skip
SMALL_EVAL = ["--num-episodes", "2", "--num-envs", "2", "--device", "cpu", "--expert", "none"]


def _error_line(result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_encoders_lists_builtins_plugins_and_cached_models(toy_plugin, fake_hf_cache, tiny_checkpoint_dir):
    fake_hf_cache("vlnav-test/tiny-siglip2", tiny_checkpoint_dir("siglip2"), "c" * 40)
    r = runner.invoke(data_app, ["encoders", "--json"])
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    dims = {name: rows[name]["dim"] for name in ("siglip", "clip", "vilt", "siglip-tiny-random", "oracle")}
    assert dims == {"siglip": 1152, "clip": 512, "vilt": 768, "siglip-tiny-random": 64, "oracle": 1152}
    assert rows["toy-pool"]["source"] == "plugin" and rows["toy-pool"]["dim"] == 48
    cached = rows["hf:vlnav-test/tiny-siglip2"]
    assert cached["source"] == "hf" and cached["dim"] == 64 and cached["note"].startswith("Siglip2Model")
    table = runner.invoke(data_app, ["encoders"])
    assert table.exit_code == 0 and "hf:vlnav-test/tiny-siglip2" in table.stdout and "toy-pool" in table.stdout


def test_a_fresh_process_finds_the_installed_plugin(toy_plugin):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(toy_plugin), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", "from vlnav_data.cli.data import main; main()", "encoders", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert {"name": "toy-pool", "source": "plugin", "dim": 48}.items() <= next(
        row for row in json.loads(out.stdout) if row["name"] == "toy-pool"
    ).items()


def test_error_lines_name_the_model_and_what_to_do(tmp_path, fake_hf_cache, monkeypatch):
    from transformers import BertConfig

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    out = ["--out", str(tmp_path / "x.h5")]
    r = runner.invoke(data_app, ["build", *out, "--encoder", "hf:vlnav-test/absent", *SMALL_BUILD])
    assert _error_line(r) == (
        "error: encoder 'vlnav-test--absent' could not load vlnav-test/absent: it is not in the Hugging Face cache at "
        f"{fake_hf_cache.cache} (nothing is downloaded at run time). Fetch it once, where the hub is reachable, with "
        "`hf download vlnav-test/absent`, or pass a local copy with --encoder hf:/path/to/dir."
    )
    bert = tmp_path / "bert"
    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64).save_pretrained(bert)
    r = runner.invoke(data_app, ["build", *out, "--encoder", f"text=hf:{bert}", *SMALL_BUILD])
    assert _error_line(r) == (
        f"error: encoder 'text' (hf:{bert}): BertModel (model_type 'bert') has no "
        "get_image_features/get_text_features; vlnav-data embeds frames and instructions with two-tower "
        "vision-language models (CLIP, SigLIP, SigLIP 2, ALIGN, MetaCLIP 2, ...). Choose such a checkpoint, or wrap "
        "this model as a plugin encoder (docs/encoders.md: Bring your own encoder)."
    )
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "config.json").write_text(json.dumps({"model_type": "toy", "auto_map": {"AutoModel": "m.ToyModel"}}))
    r = runner.invoke(data_app, ["build", *out, "--encoder", f"hf:{remote}", *SMALL_BUILD])
    assert _error_line(r) == (
        f"error: encoder 'remote' (hf:{remote}) needs the model's own code (config.json auto_map 'm.ToyModel'), which "
        "runs only with --trust-remote-code (recorded in the file); read that code, then pass --trust-remote-code"
    )
    r = runner.invoke(data_app, ["build", *out, "--encoder", "toy-pool", *SMALL_BUILD])  # not installed here
    assert _error_line(r).startswith("error: unknown encoder 'toy-pool'; expected one of: clip, clip-tiny-random")
    assert not (tmp_path / "x.h5").exists()


def test_plugin_builds_trains_and_evaluates_by_name(toy_plugin, tmp_path):
    data = tmp_path / "toy.h5"
    r = runner.invoke(data_app, ["build", "--out", str(data), "--encoder", "toy-pool", *SMALL_BUILD])
    assert r.exit_code == 0, r.output
    with DatasetReader(data) as reader:
        entry = reader.encoder_specs["toy-pool"]
        assert (entry["source"], entry["dim"], entry["revision"], entry["model_id"]) == (
            "plugin",
            48,
            "0.1",
            "vlnav-test/toy-pool",
        )
    model = tmp_path / "bc"
    r = runner.invoke(policy_app, ["train", str(data), "--out", str(model), "--encoder", "toy-pool", "--steps", "20",
                                   "--device", "cpu"])  # fmt: skip
    assert r.exit_code == 0, r.output
    r = runner.invoke(policy_app, ["eval", str(model), "--out", str(tmp_path / "ev"), *SMALL_EVAL])
    assert r.exit_code == 0, r.output
    result = json.loads((tmp_path / "ev" / "result.json").read_text())
    assert result["encoder"] == "toy-pool" and result["student"]["success"]["trials"] == 2
    assert result["encoder_revision"] == "0.1" and result["encoder_dtype"] == "float32"


@pytest.fixture(scope="module")
def hf_model(tmp_path_factory, tiny_checkpoint_dir):
    """A dataset built with ``--encoder hf:DIR`` (a copy of the tiny CLIP) and a BC model trained on it."""
    root = tmp_path_factory.mktemp("hf-pipeline")
    weights = root / "my-clip"
    shutil.copytree(tiny_checkpoint_dir("clip"), weights)
    data = root / "clip.h5"
    r = runner.invoke(data_app, ["build", "--out", str(data), "--encoder", f"hf:{weights}", *SMALL_BUILD])
    assert r.exit_code == 0, r.output
    model = root / "bc"
    r = runner.invoke(policy_app, ["train", str(data), "--out", str(model), "--steps", "20", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    return weights, data, model


def test_hf_dataset_records_the_encoder(hf_model):
    weights, data, _ = hf_model
    with DatasetReader(data) as reader:
        entry = reader.encoder_specs["my-clip"]
    assert (entry["source"], entry["model_id"], entry["revision"]) == ("hf", str(weights), content_hash(weights))
    assert (entry["dtype"], entry["device_type"], entry["dim"], entry["trust_remote_code"]) == (
        "float32",
        "cpu",
        48,
        False,
    )
    assert entry["preprocessing"]["crop_height"] == 32 and entry["preprocessing"]["text_max_length"] == 77
    assert set(entry["library_versions"]) == {"torch", "transformers"}


def test_eval_encodes_in_the_recorded_dtype_and_records_an_override(hf_model, tmp_path):
    _, _, model = hf_model
    r = runner.invoke(policy_app, ["eval", str(model), "--out", str(tmp_path / "a"), *SMALL_EVAL])
    assert r.exit_code == 0, r.output
    a = json.loads((tmp_path / "a" / "result.json").read_text())
    assert (a["encoder_dtype"], a["encoder_dtype_recorded"], a["encoder_dtype_override"]) == (
        "float32",
        "float32",
        None,
    )
    r = runner.invoke(
        policy_app, ["eval", str(model), "--out", str(tmp_path / "b"), "--encoder-dtype", "bf16", *SMALL_EVAL]
    )
    assert r.exit_code == 0, r.output
    b = json.loads((tmp_path / "b" / "result.json").read_text())
    assert (b["encoder_dtype"], b["encoder_dtype_recorded"], b["encoder_dtype_override"]) == (
        "bfloat16",
        "float32",
        "bf16",
    )
    # a file built in bf16 (as on a GPU) is evaluated in bf16 without being asked
    gpu_built = tmp_path / "bc-bf16"
    shutil.copytree(model, gpu_built)
    config = json.loads((gpu_built / "config.json").read_text())
    config["encoder_spec"]["dtype"] = "bfloat16"
    (gpu_built / "config.json").write_text(json.dumps(config))
    r = runner.invoke(policy_app, ["eval", str(gpu_built), "--out", str(tmp_path / "c"), *SMALL_EVAL])
    assert r.exit_code == 0, r.output
    c = json.loads((tmp_path / "c" / "result.json").read_text())
    assert (c["encoder_dtype"], c["encoder_dtype_override"]) == ("bfloat16", None)


def test_eval_refuses_changed_weights(hf_model, tmp_path):
    weights, _, model = hf_model
    changed = tmp_path / "my-clip"
    shutil.copytree(weights, changed)
    config = json.loads((changed / "config.json").read_text())
    config["logit_scale_init_value"] = 1.0
    (changed / "config.json").write_text(json.dumps(config))
    recorded = content_hash(weights)
    args = ["eval", str(model), "--out", str(tmp_path / "e"), "--encoder-model-path", str(changed), *SMALL_EVAL]
    assert _error_line(runner.invoke(policy_app, args)) == (
        f"error: the training data of model '{model}' was embedded with encoder 'my-clip' (hf:{weights}) at revision "
        f"{recorded}, but {changed} now has revision {content_hash(changed)}; its embeddings would differ from the "
        "stored ones. Restore the directory's original files (or pass a copy with --encoder-model-path DIR), or "
        "rebuild the dataset and retrain."
    )
    r = runner.invoke(policy_app, ["eval", str(model), "--out", str(tmp_path / "f"), "--encoder-dtype", "fp16"])
    assert _error_line(r) == (
        "error: --encoder-dtype must be one of auto, fp32, bf16 (default: the dtype the training file recorded), got "
        "'fp16'"
    )
