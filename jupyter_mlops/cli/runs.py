"""``jupyter mlops runs list|show``: the tracked runs, read from MLflow."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jupyter_mlops.cli.core import result

if TYPE_CHECKING:
    import argparse

    from jupyter_mlops.cli.core import Commands
    from jupyter_mlops.render import Result
    from jupyter_mlops.workspace import Workspace


def runs_list(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.runs.list(a.experiment, max_results=a.max))


def runs_show(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.runs.get(a.run_id))


def add_commands(commands: Commands) -> None:
    runs = commands.group("runs", "tracked runs")
    p = commands.command(runs, "list", runs_list, "list recent runs")
    p.add_argument("--experiment")
    p.add_argument("--max", type=int, default=50, help="at most this many runs (default 50)")
    p = commands.command(runs, "show", runs_show, "show one run")
    p.add_argument("run_id")
