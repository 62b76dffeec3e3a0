"""publish (dry run, shards, card, refusals, token, upload calls) and verify; nothing touches the network."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from vlnav_data.dataset import DatasetReader
from vlnav_data.dataset.validate import validate_dataset
from vlnav_data.errors import ConfigError, SchemaError
from vlnav_data.publish import PublishConfig, VerifyConfig, publish_dataset, verify_folder
from vlnav_data.publish.checksums import sha256_file

pytest.importorskip("huggingface_hub")
pytest.importorskip("pyarrow")
yaml = pytest.importorskip("yaml")


@pytest.fixture(scope="module")
def dry_run(demos_h5: Path, tmp_path_factory: pytest.TempPathFactory):
    """A dry-run folder with the HDF5 file split into shards (tiny size limit)."""
    out = tmp_path_factory.mktemp("hub") / "folder"
    limit = demos_h5.stat().st_size * 2 // 3
    return publish_dataset(
        PublishConfig(dataset=demos_h5, repo_id="someone/vlnav-test", out_dir=out, dry_run=True, shard_max_bytes=limit)
    ), limit


@pytest.fixture()
def folder_copy(dry_run, tmp_path: Path) -> Path:
    result, _ = dry_run
    dest = tmp_path / "copy"
    shutil.copytree(result.out_dir, dest)
    return dest


def _front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card[4 : card.index("\n---\n", 4)])


def test_dry_run_folder_layout_and_verify(dry_run) -> None:
    result, limit = dry_run
    out = result.out_dir
    assert not result.uploaded and result.url is None
    for rel in (
        "README.md",
        "SHA256SUMS",
        "sample_frames.png",
        "meta/info.json",
        "meta/stats.json",
        "meta/tasks.parquet",
        "meta/episodes/chunk-000/file-000.parquet",
        "data/chunk-000/file-000.parquet",
        "videos/observation.images.front/chunk-000/file-000.mp4",
    ):
        assert (out / rel).is_file(), rel
    report = verify_folder(VerifyConfig(folder=out))
    assert report.problems == ()
    listed = [line.split("  ", 1) for line in (out / "SHA256SUMS").read_text().splitlines()]
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert sorted(rel for _, rel in listed) == [f for f in files if f not in ("SHA256SUMS", "result.json")]
    for digest, rel in listed:
        assert sha256_file(out / rel) == digest
    assert report.files_checked == len(listed)


def test_shards_are_valid_below_the_limit_and_hold_every_demo(dry_run, demos_h5: Path) -> None:
    result, limit = dry_run
    assert len(result.shards) >= 2
    keys = ["actions", "obs/rgb", "obs/siglip-tiny-random_joint", "instruction_index"]
    with DatasetReader(demos_h5) as r:
        whole = r.stack(keys)
        instructions = r.instructions
        episode_indices = [r.attrs(n)["episode_index"] for n in r.demo_names]
        splits = {n: r.attrs(n)["split"] for n in r.demo_names}
    parts, shard_eps = [], []
    for k, shard in enumerate(result.shards):
        path = result.out_dir / shard.name
        assert shard.name == f"demos-{k:05d}-of-{len(result.shards):05d}.h5"
        assert path.stat().st_size < limit
        assert validate_dataset(path) == []
        with DatasetReader(path) as r:
            rows = r.stack(keys)
            rows["instruction_index"] = np.array(
                [instructions.index(r.instructions[i]) for i in rows["instruction_index"]]
            )
            parts.append(rows)
            shard_eps += [r.attrs(n)["episode_index"] for n in r.demo_names]
            for name, src in zip(r.demo_names, shard.demos, strict=True):
                assert r.attrs(name)["split"] == splits[src]
    assert shard_eps == episode_indices
    for key in keys:
        np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), whole[key])


def test_small_file_is_copied_byte_for_byte(demos_h5: Path, tmp_path: Path) -> None:
    res = publish_dataset(
        PublishConfig(
            dataset=demos_h5, repo_id="someone/vlnav-test", out_dir=tmp_path / "f", dry_run=True, images="png"
        )
    )
    assert [s.name for s in res.shards] == ["demos.h5"]
    assert sha256_file(tmp_path / "f/demos.h5") == sha256_file(demos_h5)
    assert verify_folder(VerifyConfig(folder=tmp_path / "f")).problems == ()


def test_card_front_matter_and_sections(dry_run) -> None:
    result, _ = dry_run
    card = (result.out_dir / "README.md").read_text()
    meta = _front_matter(card)
    assert meta["license"] == "apache-2.0"
    assert meta["task_categories"] == ["robotics"]
    assert "LeRobot" in meta["tags"]
    assert meta["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/*/*.parquet"}]}
    ]
    assert "![Sample frames](sample_frames.png)" in card  # the frame strip
    assert "## Layout" in card and "obs/privileged_state" in card  # the schema
    assert "### Statistics" in card and "| `action` |" in card
    with DatasetReader(result.out_dir / result.shards[0].name) as r:
        assert r.rebuild_command and r.rebuild_command in card  # the rebuild command
    assert "x264 (`libx264`, through PyAV), whose licence is GPL-2.0-or-later" in card  # video encoder + licence
    assert "## Licences of the embedding models" in card and "`siglip-tiny-random`" in card
    assert "**privileged**" in card
    for shard in result.shards:
        assert f"[{shard.name}]({shard.name})" in card


def test_verify_catches_a_flipped_byte(folder_copy: Path) -> None:
    target = folder_copy / "data/chunk-000/file-000.parquet"
    raw = bytearray(target.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    target.write_bytes(bytes(raw))
    report = verify_folder(VerifyConfig(folder=folder_copy))
    assert len(report.problems) == 1
    assert report.problems[0].startswith("'data/chunk-000/file-000.parquet' is corrupt or modified: sha256 ")


def test_verify_accepts_what_a_hub_download_adds(folder_copy: Path) -> None:
    (folder_copy / ".gitattributes").write_text("*.h5 filter=lfs diff=lfs merge=lfs -text\n")
    (folder_copy / ".cache/huggingface/download").mkdir(parents=True)
    (folder_copy / ".cache/huggingface/download/README.md.metadata").write_text("x")
    assert verify_folder(VerifyConfig(folder=folder_copy)).problems == ()


def test_verify_lists_every_problem(folder_copy: Path) -> None:
    (folder_copy / "sample_frames.png").unlink()  # listed and linked from the card
    (folder_copy / "stray.bin").write_bytes(b"x")
    with open(folder_copy / "SHA256SUMS", "a") as fh:
        fh.write("not a checksum line\n")
    report = verify_folder(VerifyConfig(folder=folder_copy))
    assert set(report.problems) == {
        "'sample_frames.png' is listed in SHA256SUMS but missing",
        "'stray.bin' is not listed in SHA256SUMS (an extra or renamed file)",
        "SHA256SUMS line "
        f"{len((folder_copy / 'SHA256SUMS').read_text().splitlines())} is malformed (expected '<64 hex digits>  "
        "<path>'): 'not a checksum line'",
        "README.md links to 'sample_frames.png', which does not exist",
    }


def test_verify_checks_lerobot_consistency_and_missing_sums(folder_copy: Path) -> None:
    info = json.loads((folder_copy / "meta/info.json").read_text())
    info["total_frames"] += 1
    (folder_copy / "meta/info.json").write_text(json.dumps(info))
    (folder_copy / "SHA256SUMS").unlink()
    problems = verify_folder(VerifyConfig(folder=folder_copy)).problems
    assert problems[0].startswith("SHA256SUMS is missing")
    assert any(p.startswith("data/*/*.parquet hold ") and "total_frames=" in p for p in problems)


def test_verify_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a directory"):
        VerifyConfig(folder=tmp_path / "nope")


def test_partial_file_refuses_to_publish(demos_h5: Path, tmp_path: Path) -> None:
    partial = tmp_path / "demos.h5.partial"
    shutil.copy(demos_h5, partial)
    with pytest.raises(SchemaError) as err:
        publish_dataset(PublishConfig(dataset=partial, repo_id="a/b", out_dir=tmp_path / "o", dry_run=True))
    assert str(err.value) == (
        f"'{partial}' is an unfinished build (.partial); finish it with `vlnav-data build --resume` and publish "
        "the completed file"
    )
    assert not (tmp_path / "o").exists()


def test_invalid_file_refuses_to_publish(demos_h5: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.h5"
    shutil.copy(demos_h5, bad)
    with h5py.File(bad, "r+") as f:
        f.attrs["complete"] = False
    with pytest.raises(SchemaError, match=r"is not a valid dataset, so it cannot be published: \d+ problem"):
        publish_dataset(PublishConfig(dataset=bad, repo_id="a/b", out_dir=tmp_path / "o", dry_run=True))
    assert not (tmp_path / "o").exists()


def test_non_empty_out_dir_needs_overwrite(demos_h5: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(ConfigError) as err:
        publish_dataset(PublishConfig(dataset=demos_h5, repo_id="a/b", out_dir=out, dry_run=True))
    assert str(err.value) == (
        f"output directory '{out}' already exists and is not empty; pass --overwrite to replace its contents, "
        "or choose another --out"
    )


def test_bad_repo_id() -> None:
    with pytest.raises(ConfigError, match="--repo-id must look like ORG/NAME"):
        PublishConfig(dataset=Path("x.h5"), repo_id="no-slash")


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> list:
    attempts: list = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise AssertionError(f"network access attempted: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def test_missing_token_gives_the_exact_instruction_without_any_request(
    demos_h5: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list
) -> None:
    hf = pytest.importorskip("huggingface_hub")
    home = tmp_path / "hf_home"
    home.mkdir()
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setattr(hf.constants, "HF_TOKEN_PATH", str(home / "token"))  # read at import from HF_HOME
    with pytest.raises(ConfigError) as err:
        publish_dataset(PublishConfig(dataset=demos_h5, repo_id="someone/vlnav-test", out_dir=tmp_path / "o"))
    assert str(err.value) == (
        f"no Hugging Face token: HF_TOKEN is not set and no token is stored at '{home / 'token'}'; log in with "
        "`hf auth login` (or set HF_TOKEN to a write token from https://huggingface.co/settings/tokens), "
        "or pass --dry-run to assemble the folder without uploading"
    )
    assert no_network == []
    assert not (tmp_path / "o").exists()  # checked before any work


class _FakeApi:
    calls: list = []

    def __init__(self, token=None):
        _FakeApi.calls.append(("init", token))

    def create_repo(self, repo_id, **kw):
        _FakeApi.calls.append(("create_repo", repo_id, kw))

    def upload_folder(self, **kw):
        _FakeApi.calls.append(("upload_folder", kw))

    def list_repo_refs(self, repo_id, **kw):
        _FakeApi.calls.append(("list_repo_refs", repo_id, kw))
        return SimpleNamespace(tags=[SimpleNamespace(name="v3.0")], branches=[])

    def delete_tag(self, repo_id, **kw):
        _FakeApi.calls.append(("delete_tag", repo_id, kw))

    def create_tag(self, repo_id, **kw):
        _FakeApi.calls.append(("create_tag", repo_id, kw))


def test_upload_creates_the_repo_uploads_and_tags_v3(
    demos_h5: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list
) -> None:
    hf = pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the suite runs offline; the fake API is the Hub
    monkeypatch.setattr(hf, "HfApi", _FakeApi)
    _FakeApi.calls = []
    res = publish_dataset(
        PublishConfig(
            dataset=demos_h5, repo_id="someone/vlnav-test", out_dir=tmp_path / "o", private=True, images="png"
        )
    )
    assert res.uploaded and res.url == "https://huggingface.co/datasets/someone/vlnav-test" and res.tag == "v3.0"
    names = [c[0] for c in _FakeApi.calls]
    assert names == ["init", "create_repo", "upload_folder", "list_repo_refs", "delete_tag", "create_tag"]
    assert _FakeApi.calls[0] == ("init", "hf_test_token")
    assert _FakeApi.calls[1] == (
        "create_repo",
        "someone/vlnav-test",
        {"repo_type": "dataset", "private": True, "exist_ok": True},
    )
    upload = _FakeApi.calls[2][1]
    assert upload["repo_id"] == "someone/vlnav-test" and upload["repo_type"] == "dataset"
    assert Path(upload["folder_path"]) == res.out_dir
    assert "result.json" in upload["ignore_patterns"]
    assert _FakeApi.calls[5] == ("create_tag", "someone/vlnav-test", {"tag": "v3.0", "repo_type": "dataset"})
    assert no_network == []


class _FakeLargeApi(_FakeApi):
    """huggingface_hub 0.25-1.x: upload_large_folder is the resumable upload; an interruption can be injected."""

    fail_after: int | None = None  # files "uploaded" before a connection error (None: never fails)
    on_hub: set = set()

    def upload_large_folder(self, **kw):
        _FakeApi.calls.append(("upload_large_folder", kw))
        folder = Path(kw["folder_path"])
        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        files = [f for f in files if f != "result.json" and not f.startswith(".cache/")]
        for k, rel in enumerate(files):
            if _FakeLargeApi.fail_after is not None and k == _FakeLargeApi.fail_after:
                import httpx2

                raise httpx2.ConnectError("[Errno 104] Connection reset by peer")
            _FakeLargeApi.on_hub.add((rel, sha256_file(folder / rel)))


def _publish_with(api, demos_h5, out, monkeypatch, overwrite=False):
    hf = pytest.importorskip("huggingface_hub")
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the suite runs offline; the fake API is the Hub
    monkeypatch.setattr(hf, "HfApi", api)
    return publish_dataset(
        PublishConfig(dataset=demos_h5, repo_id="someone/vlnav-test", out_dir=out, images="png", overwrite=overwrite)
    )


def test_upload_uses_the_resumable_large_folder_upload_when_the_library_has_it(
    demos_h5: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list
) -> None:
    _FakeApi.calls, _FakeLargeApi.fail_after, _FakeLargeApi.on_hub = [], None, set()
    res = _publish_with(_FakeLargeApi, demos_h5, tmp_path / "o", monkeypatch)
    names = [c[0] for c in _FakeApi.calls]
    assert names == ["init", "create_repo", "upload_large_folder", "list_repo_refs", "delete_tag", "create_tag"]
    kw = _FakeApi.calls[2][1]
    assert kw["repo_type"] == "dataset" and kw["private"] is False and Path(kw["folder_path"]) == res.out_dir
    # What reached the Hub is exactly what SHA256SUMS lists (plus SHA256SUMS itself), nothing local-only.
    listed = {tuple(reversed(line.split("  ", 1))) for line in (res.out_dir / "SHA256SUMS").read_text().splitlines()}
    assert _FakeLargeApi.on_hub == listed | {("SHA256SUMS", sha256_file(res.out_dir / "SHA256SUMS"))}
    assert no_network == []


def test_an_interrupted_upload_is_one_error_and_the_same_command_finishes_it(
    demos_h5: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list
) -> None:
    from vlnav_data.errors import PublishError

    _FakeApi.calls, _FakeLargeApi.fail_after, _FakeLargeApi.on_hub = [], 3, set()
    out = tmp_path / "o"
    with pytest.raises(PublishError) as err:
        _publish_with(_FakeLargeApi, demos_h5, out, monkeypatch)
    assert str(err.value) == (
        f"uploading '{out.resolve()}' to https://huggingface.co/datasets/someone/vlnav-test failed (ConnectError: "
        "[Errno 104] Connection reset by peer); the folder was assembled and checksummed but not published: check "
        "the network and `hf auth whoami`, then run the same command again with --overwrite"
    )
    assert len(_FakeLargeApi.on_hub) == 3 and "create_tag" not in [c[0] for c in _FakeApi.calls]  # no tag yet
    assert (out / "SHA256SUMS").is_file()  # the assembled folder stays for the retry
    _FakeLargeApi.fail_after = None
    res = _publish_with(_FakeLargeApi, demos_h5, out, monkeypatch, overwrite=True)  # what the message says to do
    assert res.uploaded and res.tag == "v3.0" and [c[0] for c in _FakeApi.calls][-1] == "create_tag"
    assert {rel for rel, _ in _FakeLargeApi.on_hub} >= {"SHA256SUMS", "README.md", "demos.h5"}


def test_the_upload_call_fits_the_installed_huggingface_hub(tmp_path: Path) -> None:
    """The keyword arguments publish passes bind to the installed HfApi method (no network: nothing is called)."""
    import inspect

    hf = pytest.importorskip("huggingface_hub")
    from vlnav_data.publish.hub import upload_call

    api = hf.HfApi(token="hf_test_token")
    method, kwargs = upload_call(api, tmp_path, "someone/vlnav-test", private=True)
    assert method == ("upload_large_folder" if hasattr(hf.HfApi, "upload_large_folder") else "upload_folder")
    inspect.signature(getattr(hf.HfApi, method)).bind(api, **kwargs)  # raises TypeError on a mismatch


def test_encoder_licence_lines() -> None:
    from vlnav_data.publish.hub_card import encoder_licence

    assert encoder_licence("siglip", {"model_id": "google/siglip-so400m-patch14-384"}) == (
        "`siglip`: google/siglip-so400m-patch14-384 — licence apache-2.0 "
        "(https://huggingface.co/google/siglip-so400m-patch14-384)"
    )
    assert "licence mit" in encoder_licence("clip", {"model_id": "openai/clip-vit-base-patch32"})
    assert "no model licence" in encoder_licence("oracle", {"model_id": "x", "privileged": True})
    assert "random weights" in encoder_licence("siglip-tiny-random", {"model_id": "vlnav-data/siglip-tiny-random"})
    local = encoder_licence("siglip", {"model_id": "/models/siglip"})
    assert "weights loaded from /models/siglip" in local and "licence apache-2.0" in local
    assert "licence unknown" in encoder_licence("mine", {"model_id": "me/model"})


def test_missing_hub_extra_names_the_install_command(
    demos_h5: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow` raise ImportError
    with pytest.raises(ConfigError) as err:
        publish_dataset(PublishConfig(dataset=demos_h5, repo_id="a/b", out_dir=tmp_path / "o", dry_run=True))
    assert str(err.value) == (
        "'pyarrow' is not installed, and exporting or publishing datasets needs it; install the hub extra with: "
        "pip install 'vlnav-data[hub]'"
    )
    assert not (tmp_path / "o").exists()
