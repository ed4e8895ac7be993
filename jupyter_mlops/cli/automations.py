"""``jupyter mlops automations …``: rules that act on events (create, apply a YAML file, list, show, delete), the
actions they took (runs), and a runner for a terminal or cron (run)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from jupyter_mlops.cli.core import pairs, result
from jupyter_mlops.exceptions import UsageError

if TYPE_CHECKING:
    import argparse

    from jupyter_mlops.cli.core import Commands
    from jupyter_mlops.render import Result
    from jupyter_mlops.workspace import Workspace


def _action(a: argparse.Namespace) -> dict[str, Any]:
    import yaml

    given = {k: v for k, v in (("pipeline", a.do_pipeline), ("evaluate", a.do_evaluate), ("promote", a.do_promote),
                               ("notify", a.do_notify)) if v}  # fmt: skip
    if len(given) != 1:
        raise UsageError(
            "Give exactly one action: --do-pipeline SPEC, --do-evaluate REF, --do-promote REF or --do-notify TEXT."
        )
    action: dict[str, Any] = dict(given)
    if a.do_pipeline and a.param:
        action["parameters"] = {k: yaml.safe_load(v) if v else v for k, v in pairs(a.param, "parameter").items()}
    if a.do_evaluate and a.data:
        action.update(data=a.data, targets=a.target)
    if a.do_promote:
        action["alias"] = a.alias
    return action


def automations_create(ws: Workspace, a: argparse.Namespace) -> Result:
    where = pairs(a.where, "condition")
    made = ws.automations.create(a.name, on=a.on, where=where, do=_action(a), cooldown=a.cooldown)
    return result(made, f"Created automation {made.name}: it reacts to {', '.join(made.on)} from now on.")


def automations_apply(ws: Workspace, a: argparse.Namespace) -> Result:
    made = ws.automations.apply(a.file)
    return result(made, f"Applied {len(made)} automation(s) from {a.file}.")


def automations_list(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.automations.list())


def automations_show(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.automations.get(a.name))


def automations_delete(ws: Workspace, a: argparse.Namespace) -> Result:
    ws.automations.delete(a.name)
    return result({"name": a.name, "deleted": True}, f"Deleted automation {a.name} (its recorded actions stay).")


def automations_runs(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.automations.runs(a.name, limit=a.limit))


def automations_run(ws: Workspace, a: argparse.Namespace) -> Result:
    """One pass with --once (cron); else pass after pass until Ctrl-C, printing each action."""
    if a.once:
        return result(ws.automations.run_pending())
    taken = 0
    try:
        while True:
            for run in ws.automations.run_pending():
                taken += 1
                print(
                    f"[automations] {run.automation}: {run.event_type} -> {run.status} {run.reason or ''}", flush=True
                )
            time.sleep(a.interval)
    except KeyboardInterrupt:
        return result({"actions": taken}, f"Stopped after {taken} action(s).")


def add_commands(commands: Commands) -> None:
    command = commands.command
    group = commands.group("automations", "rules that act on events: run a pipeline, evaluate, promote, notify")
    p = command(group, "create", automations_create, "react to events with an action")
    p.add_argument("name")
    p.add_argument("--on", action="append", required=True, metavar="EVENT_TYPE", help="repeatable")
    p.add_argument("--where", action="append", metavar="FIELD=GLOB", help="subject=models/churn/*, data.KEY=... ")
    p.add_argument("--do-pipeline", metavar="SPEC", help="run this pipeline.yaml")
    p.add_argument("-p", "--param", action="append", metavar="KEY=VALUE", help="its parameters (${data.KEY} allowed)")
    p.add_argument(
        "--do-evaluate", metavar="REF", help="evaluate NAME:VERSION (e.g. ${data.modelName}:${data.modelVersion})"
    )
    p.add_argument("--data", help="with --do-evaluate: the held-out rows")
    p.add_argument("--target", default="label", help="with --do-evaluate: the label column")
    p.add_argument("--do-promote", metavar="REF", help="promote NAME:VERSION (the release policy applies)")
    p.add_argument("--alias", default="champion", help="with --do-promote (default: champion)")
    p.add_argument("--do-notify", metavar="TEXT", help="an automation.notification event (webhooks, e-mail, Lab)")
    p.add_argument("--cooldown", default="0", help="skip events within this long of its last action (30s, 1h)")
    p = command(group, "apply", automations_apply, "create the automations of an automations.yaml")
    p.add_argument("file")
    command(group, "list", automations_list, "list the automations")
    p = command(group, "show", automations_show, "show one automation")
    p.add_argument("name")
    p = command(group, "delete", automations_delete, "delete an automation (its recorded actions stay)")
    p.add_argument("name")
    p = command(group, "runs", automations_runs, "the actions an automation took, newest first")
    p.add_argument("name")
    p.add_argument("--limit", type=int, default=100)
    p = command(group, "run", automations_run, "act on new events: one pass (--once) or until Ctrl-C")
    p.add_argument("--once", action="store_true")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between passes (default: 1)")
