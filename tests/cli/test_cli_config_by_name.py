"""Commands fill their config by name (``command_config`` / ``run_config``): no parameter may fall through.

A command names its Python parameters after its config's fields; a parameter that is neither a field nor
used by the command itself (converted, checked, or the shell's own ``overwrite``/``as_json``) would be
silently ignored, so a misnamed option would do nothing. This test reads every command that builds its
config by name and fails on such a parameter, and on a required field no parameter or value fills.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
from pathlib import Path

import pytest

from vlnav_data.jsonio import dataclass_from

CLI = Path(__file__).resolve().parents[2] / "vlnav_data" / "cli"
SHELL = {"overwrite", "as_json", "json_out", "no_progress"}


def _by_name_calls() -> list[tuple[str, ast.FunctionDef, ast.Call, str]]:
    found = []
    for path in sorted(p for p in CLI.glob("*.py") if p.name != "_common.py"):
        tree = ast.parse(path.read_text())
        for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
            for call in (n for n in ast.walk(fn) if isinstance(n, ast.Call)):
                args = list(call.args)
                if isinstance(call.func, ast.Name) and call.func.id == "run_command" and args:
                    call, args = ast.Call(func=args[0], args=args[1:], keywords=call.keywords), args[1:]
                name = call.func.id if isinstance(call.func, ast.Name) else None
                if name == "command_config":
                    found.append((path.stem, fn, call, args[0].id))
                elif name == "run_config":
                    found.append((path.stem, fn, call, args[1].id))
    return found


CALLS = _by_name_calls()


def _config_class(module: str, fn: ast.FunctionDef, name: str) -> type:
    for node in ast.walk(fn):
        if isinstance(node, ast.ImportFrom) and any(a.name == name for a in node.names):
            return getattr(importlib.import_module(node.module), name)
    return getattr(importlib.import_module(f"vlnav_data.cli.{module}"), name)


def test_the_commands_that_fill_their_config_by_name_are_found() -> None:
    assert len(CALLS) >= 14, [f"{m}.{fn.name}" for m, fn, _, _ in CALLS]


@pytest.mark.parametrize(("module", "fn", "call", "config"), CALLS, ids=[f"{m}.{f.name}" for m, f, _, _ in CALLS])
def test_no_parameter_falls_through(module: str, fn: ast.FunctionDef, call: ast.Call, config: str) -> None:
    cls = _config_class(module, fn, config)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    params = [a.arg for a in fn.args.args + fn.args.kwonlyargs]
    given = {k.arg for k in call.keywords if k.arg not in (None, "out", "inputs", "kind", "convert")}
    used = {n.id for n in ast.walk(ast.Module(body=fn.body, type_ignores=[])) if isinstance(n, ast.Name)}
    dropped = [p for p in params if p not in fields and p not in SHELL and p not in used]
    assert not dropped, f"{module}.{fn.name}: parameter(s) {dropped} are no field of {config} and unused"
    required = [
        n
        for n, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
    ]
    unfilled = [n for n in required if n not in params and n not in given]
    assert not unfilled, f"{module}.{fn.name}: required field(s) {unfilled} of {config} are never filled"


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Config:
    path: Path
    seed: int = 0
    device: str = "cpu"


def test_dataclass_from_fills_by_name_overrides_win_and_typos_are_refused() -> None:
    params = {"path": Path("a.h5"), "seed": 3, "device": "auto", "overwrite": True}
    assert dataclass_from(_Config, params, device="cpu") == _Config(path=Path("a.h5"), seed=3, device="cpu")
    assert dataclass_from(_Config, {"path": "b"}) == _Config(path="b")  # a field nobody names keeps its default
    with pytest.raises(TypeError, match=r"_Config has no field\(s\) \['sead'\]"):
        dataclass_from(_Config, params, sead=1)
    with pytest.raises(TypeError):  # a required field neither given nor named
        dataclass_from(_Config, {"seed": 1})
