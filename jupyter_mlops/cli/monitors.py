"""``jupyter mlops monitor …``: drift monitors over what endpoints collect."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from jupyter_mlops.cli.core import result

if TYPE_CHECKING:
    from jupyter_mlops.cli.core import Commands
    from jupyter_mlops.render import Result
    from jupyter_mlops.workspace import Workspace


def create(ws: Workspace, a: argparse.Namespace) -> Result:
    monitor = ws.monitors.create(
        a.name,
        a.endpoint,
        reference=a.reference,
        deployment=a.deployment,
        features=a.feature,
        schedule=a.schedule,
        thresholds=json.loads(a.thresholds) if a.thresholds else None,
    )
    return result(monitor, f"Monitor {a.name} watches {a.endpoint} every {monitor.schedule_s} s.")


def list_monitors(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.monitors.list())


def show(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.monitors.get(a.name))


def run(ws: Workspace, a: argparse.Namespace) -> Result:
    if a.due:
        runs = ws.monitors.run_due()
        return result(runs, f"Ran {len(runs)} monitor(s) that were due.")
    if not a.name:
        from jupyter_mlops.exceptions import InvalidInput

        raise InvalidInput("Name a monitor, or pass --due to run every monitor whose schedule has come.")
    outcome = ws.monitors.run(a.name)
    if outcome is None:
        return result(None, f"Another scheduler is checking {a.name}'s window right now.")
    return result(outcome, "; ".join(outcome.alerts) or "No threshold crossed.")


def delete(ws: Workspace, a: argparse.Namespace) -> Result:
    ws.monitors.delete(a.name)
    return result({"name": a.name, "deleted": True}, f"Deleted monitor {a.name}.")


def add_commands(commands: Commands) -> None:
    group = commands.group("monitor", "drift monitors over what endpoints receive")
    p = commands.command(group, "create", create, "watch an endpoint's inputs against a reference")
    p.add_argument("name")
    p.add_argument("endpoint")
    p.add_argument("--reference", required=True, help="a CSV or Parquet file, e.g. the training features")
    p.add_argument("--deployment", help="one deployment (default: all of the endpoint's)")
    p.add_argument("--feature", action="append", help="a column to watch (repeatable; default: all)")
    p.add_argument("--schedule", default="15m", help="how often: 30s, 15m, 1h, 1d (default 15m)")
    p.add_argument("--thresholds", help='JSON, e.g. \'{"drift_share": 0.3, "null_rate": 0.1}\'')
    commands.command(group, "list", list_monitors, "list monitors")
    p = commands.command(group, "show", show, "show a monitor and its last result")
    p.add_argument("name")
    p = commands.command(group, "run", run, "check a monitor's window now (--due: every monitor that is due)")
    p.add_argument("name", nargs="?")
    p.add_argument("--due", action="store_true")
    p = commands.command(group, "delete", delete, "delete a monitor")
    p.add_argument("name")
