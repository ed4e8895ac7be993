"""``jupyter mlops rollouts …``: move a deployment into live traffic in steps, watched by guards, optionally after a
shadow phase on mirrored traffic (start), and follow or steer it (status, list, pause, resume, abort)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jupyter_mlops.cli.core import pairs, result
from jupyter_mlops.exceptions import UsageError

if TYPE_CHECKING:
    import argparse

    from jupyter_mlops.cli.core import Commands
    from jupyter_mlops.render import Result
    from jupyter_mlops.workspace import Workspace


def _steps(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--steps is a comma-separated list of percentages such as 10,50,100, not {text!r}.") from None


def _guards(given: list[str] | None) -> dict[str, float] | None:
    if not given:
        return None
    guards: dict[str, float] = {}
    for name, value in pairs(given, "guard").items():
        try:
            guards[name] = float(value)
        except ValueError:
            raise UsageError(f"The guard {name} takes a number, not {value!r}.") from None
    return guards


def rollouts_start(ws: Workspace, a: argparse.Namespace) -> Result:
    made = ws.rollouts.start(
        a.endpoint,
        a.deployment,
        model=a.model,
        steps=_steps(a.steps),
        bake=a.bake,
        guards=_guards(a.guard),
        shadow=a.shadow,
        shadow_percent=a.shadow_percent,
        promote=a.promote or False,
    )
    steps = ", ".join(f"{s}%" for s in made.steps)
    first = f"a shadow phase of {a.shadow} on {a.shadow_percent}% mirrored, then " if a.shadow else ""
    return result(made, f"Rollout {made.id} of {a.endpoint}/{a.deployment} started: {first}steps {steps}.")


def rollouts_status(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.rollouts.status(a.endpoint))


def rollouts_list(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.rollouts.list(a.endpoint))


def rollouts_pause(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.rollouts.pause(a.endpoint))


def rollouts_resume(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.rollouts.resume(a.endpoint))


def rollouts_abort(ws: Workspace, a: argparse.Namespace) -> Result:
    done = ws.rollouts.abort(a.endpoint)
    return result(done, f"Rollout {done.id} of {a.endpoint}: {done.state}; traffic is back to its earlier split.")


def add_commands(commands: Commands) -> None:
    command = commands.command
    group = commands.group("rollouts", "move a deployment into live traffic in steps, rolled back when a guard trips")
    p = command(group, "start", rollouts_start, "start a rollout (returns at once; a controller process drives it)")
    p.add_argument("endpoint")
    p.add_argument("deployment")
    p.add_argument("--model", help="deploy this model (NAME:VERSION, NAME@ALIAS) as the deployment first")
    p.add_argument("--steps", default="10,50,100", help="traffic percentages (default: 10,50,100)")
    p.add_argument("--bake", default="5m", help="how long each step is watched (30s, 5m; default: 5m)")
    p.add_argument(
        "--guard",
        action="append",
        metavar="NAME=THRESHOLD",
        help="error_rate=0.01, p99_ms=50, min_requests=200; with --shadow also agreement=0.95, abs_diff_mean=0.1",
    )
    p.add_argument(
        "--shadow", metavar="DURATION", help="first mirror requests to it this long (10m) and compare with live"
    )
    p.add_argument("--shadow-percent", type=int, default=50, help="share mirrored in the shadow phase (default 50)")
    p.add_argument(
        "--promote", nargs="?", const="champion", metavar="ALIAS", help="at 100%%, promote the model (champion)"
    )
    for name, func, help in (
        ("status", rollouts_status, "the endpoint's latest rollout: state, step and guard figures"),
        ("list", rollouts_list, "the rollouts, newest first"),
        ("pause", rollouts_pause, "hold the current step"),
        ("resume", rollouts_resume, "go on from the current step"),
        ("abort", rollouts_abort, "roll back to the split from before the rollout"),
    ):
        p = command(group, name, func, help)
        p.add_argument("endpoint", nargs="?" if name == "list" else None)
