"""``jupyter mlops endpoints …``: online endpoints, their deployments, traffic and mirroring."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from jupyter_mlops.cli import pairs, result
from jupyter_mlops.exceptions import InvalidInput

if TYPE_CHECKING:
    from jupyter_mlops.cli import Commands
    from jupyter_mlops.render import Result
    from jupyter_mlops.workspace import Workspace


def _percentages(values: list[str]) -> dict[str, int]:
    parsed = {}
    for name, value in pairs(values, "percentage").items():
        if not value.isdigit():
            raise InvalidInput(f"{name}={value}: percentages are whole numbers, e.g. blue=90 green=10.")
        parsed[name] = int(value)
    return parsed


def create(ws: Workspace, a: argparse.Namespace) -> Result:
    endpoint = ws.endpoints.create(a.name, auth=a.auth, host=a.host, port=a.port)
    return result(ws.endpoints.show(endpoint.name), f"Endpoint {a.name} listens at {endpoint.scoring_uri}.")


def deploy(ws: Workspace, a: argparse.Namespace) -> Result:
    info = ws.endpoints.deploy(a.name, a.deployment, a.model, scoring_script=a.scoring_script, collect=not a.no_collect)
    return result(info, f"{a.name}/{a.deployment} serves {info.model} ({info.traffic}% of traffic).")


def traffic(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.endpoints.set_traffic(a.name, _percentages(a.split)))


def mirror(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.endpoints.set_mirror(a.name, _percentages(a.split)))


def invoke(ws: Workspace, a: argparse.Namespace) -> Result:
    if (a.data is None) == (a.file is None):
        raise InvalidInput("Give the request as --data JSON or --file PATH.")
    body = a.data if a.data is not None else Path(a.file).read_text()
    return result(ws.endpoints.invoke(a.name, body, deployment=a.deployment))


def list_endpoints(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.endpoints.list())


def show(ws: Workspace, a: argparse.Namespace) -> Result:
    if a.keys:
        return result(ws.endpoints.keys(a.name), json.dumps(ws.endpoints.keys(a.name)))
    return result(ws.endpoints.show(a.name))


def logs(ws: Workspace, a: argparse.Namespace) -> Result:
    text = ws.endpoints.logs(a.name, a.deployment, lines=a.lines)
    return result({"name": a.name, "logs": text}, text)


def delete(ws: Workspace, a: argparse.Namespace) -> Result:
    ws.endpoints.delete(a.name)
    return result({"name": a.name, "deleted": True}, f"Deleted endpoint {a.name}.")


def add_commands(commands: Commands) -> None:
    group = commands.group("endpoints", "online endpoints: deployments, traffic, mirroring")
    p = commands.command(group, "create", create, "start an endpoint (a router process on 127.0.0.1)")
    p.add_argument("name")
    p.add_argument("--auth", choices=["key", "none"], default="key")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int)
    p = commands.command(group, "deploy", deploy, "add or replace a deployment (0%% traffic until set)")
    p.add_argument("name")
    p.add_argument("deployment")
    p.add_argument("model", help="NAME:VERSION, models:/NAME/VERSION or models:/NAME@ALIAS")
    p.add_argument("--scoring-script", help="score.py with init() and run(raw_data)")
    p.add_argument("--no-collect", action="store_true", help="do not keep inputs and outputs")
    p = commands.command(group, "traffic", traffic, "split live traffic, e.g. blue=90 green=10")
    p.add_argument("name")
    p.add_argument("split", nargs="+", metavar="DEPLOYMENT=PERCENT")
    p = commands.command(group, "mirror", mirror, "mirror a share of traffic to one deployment, e.g. green=20")
    p.add_argument("name")
    p.add_argument("split", nargs="+", metavar="DEPLOYMENT=PERCENT")
    p = commands.command(group, "invoke", invoke, "send one request to /score")
    p.add_argument("name")
    p.add_argument("--data", help="the JSON body")
    p.add_argument("--file", help="a file holding the JSON body")
    p.add_argument("--deployment", help="send it to this deployment")
    commands.command(group, "list", list_endpoints, "list endpoints (a crashed router is reported and restarted)")
    p = commands.command(group, "show", show, "show an endpoint")
    p.add_argument("name")
    p.add_argument("--keys", action="store_true", help="print the endpoint's key")
    p = commands.command(group, "logs", logs, "the router's log (lines naming a deployment with DEPLOYMENT)")
    p.add_argument("name")
    p.add_argument("deployment", nargs="?")
    p.add_argument("--lines", type=int, default=100)
    p = commands.command(group, "delete", delete, "stop and remove an endpoint")
    p.add_argument("name")
