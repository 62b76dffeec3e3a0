"""`vlnav-data check-arena`: check a simulator against the contract (registered by `vlnav_data.cli.data`)."""

from __future__ import annotations

import json

import typer

from vlnav_data.cli._common import run_command, seed_option, to_jsonable


def _build_env(preset: str, factory: str | None, num_envs: int, render: bool, autoreset: str, max_steps: int):
    from vlnav_data.sim import load_env_factory, make_arena

    if factory is not None:
        return load_env_factory(factory)(num_envs)
    overrides = {"max_episode_steps": max_steps} if max_steps > 0 else {}
    return make_arena(preset, num_envs=num_envs, render=render, autoreset_mode=autoreset, **overrides)


def check_arena_command(
    preset: str = typer.Option("text2nav", help="Arena preset to check (e.g. text2nav-mujoco)."),
    factory: str | None = typer.Option(
        None, "--factory", help="Check your own simulator: MODULE:CALLABLE, called with num_envs (overrides --preset)."
    ),
    num_envs: int = typer.Option(2, "--num-envs", help="Environments in the checked batch."),
    render: bool = typer.Option(True, "--render/--no-render", help="Check frames too (presets only)."),
    autoreset: str = typer.Option(
        "same_step", "--autoreset", help="Autoreset mode: same_step, next_step or disabled (presets only)."
    ),
    max_episode_steps: int = typer.Option(
        40,
        "--max-episode-steps",
        help="Time limit of the checked preset arena, short so it is exercised (0: preset's).",
    ),
    seed: int = seed_option("Seed of the check's resets."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON to stdout."),
) -> None:
    """Run the simulator contract on an env; list ALL violations (exit 1 when any, 0 when it conforms)."""
    from vlnav_data.sim import check_arena

    def run():
        env = _build_env(preset, factory, num_envs, render, autoreset, max_episode_steps)
        return check_arena(env, seed=seed)

    report = run_command(run)
    if json_out:
        payload = {"env": report.env, "ok": report.ok, "violations": report.messages(), "notes": list(report.notes)}
        typer.echo(json.dumps(to_jsonable(payload), indent=2))
    else:
        what = factory or preset
        if report.ok:
            typer.echo(f"{what}: {report.env} meets the simulator contract")
        else:
            typer.echo(f"{what}: {report.env}: {len(report.violations)} violation(s)")
            for line in report.messages():
                typer.echo(f"  {line}")
        for note in report.notes:
            typer.echo(f"  note: {note}")
    if not report.ok:
        raise typer.Exit(code=1)


COMMANDS = {"check-arena": check_arena_command}
"""The commands of this module, by the name `vlnav-data` registers them under (``cli/data.py``)."""
