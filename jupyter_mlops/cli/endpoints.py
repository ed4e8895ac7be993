"""``jupyter mlops endpoints …``: online endpoints, their deployments, traffic and mirroring."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from jupyter_mlops.cli.core import pairs, result
from jupyter_mlops.deploy.resources import from_flags
from jupyter_mlops.exceptions import InvalidInput

if TYPE_CHECKING:
    from jupyter_mlops.cli.core import Commands
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
    endpoint = ws.endpoints.create(a.name, auth=a.auth, host=a.host, port=a.port, instances=a.instances)
    return result(ws.endpoints.show(endpoint.name), f"Endpoint {a.name} listens at {endpoint.scoring_uri}.")


def deploy(ws: Workspace, a: argparse.Namespace) -> Result:
    info = ws.endpoints.deploy(
        a.name,
        a.deployment,
        a.model,
        scoring_script=a.scoring_script,
        environment=a.environment,
        target=a.target,
        instances=a.instances,
        collect=not a.no_collect,
        resources=from_flags(a.cpu, a.memory, a.gpu),
    )
    where = {"router": "in the endpoint's workers", "venv": f"in environment {info.environment}"}.get(
        info.runs_in, "in a container"
    )
    lines = [f"{a.name}/{a.deployment} serves {info.model} {where} ({info.traffic}% of traffic) on {info.provider}."]
    if info.resources and info.resources != {"gpu": 0}:
        lines.append(f"Resources: {_resources(info.resources)}" + (f" ({info.limits})" if info.limits else ""))
    return result(info, "\n".join(lines))


def _resources(given: dict[str, object] | None) -> str:
    return ", ".join(f"{k} {v}" for k, v in (given or {}).items()) or "none"


def add_resource_flags(p: argparse.ArgumentParser, per: str) -> None:
    """``--cpu``, ``--memory``, ``--gpu``: the ``resources`` of a deployment, a batch endpoint or a package."""
    p.add_argument("--cpu", help=f"cores {per} (e.g. 2, 0.5 or 500m)")
    p.add_argument("--memory", help=f"memory {per} (e.g. 512Mi, 2Gi)")
    p.add_argument("--gpu", help="GPUs: 0, 1, ... (refused without one), or prefer (the CPU when there is none)")


def traffic(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.endpoints.set_traffic(a.name, _percentages(a.split)))


def mirror(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.endpoints.set_mirror(a.name, _percentages(a.split)))


def shadow(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.endpoints.get(a.name).shadow_report(a.deployment))


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
    add_endpoint_commands(commands)
    add_batch_commands(commands)


def add_endpoint_commands(commands: Commands) -> None:
    group = commands.group("endpoints", "online endpoints: deployments, traffic, mirroring")
    p = commands.command(group, "create", create, "start an endpoint (router worker processes on 127.0.0.1)")
    p.add_argument("name")
    p.add_argument("--auth", choices=["key", "none"], default="key")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int)
    p.add_argument("--instances", type=int, default=1, help="worker processes sharing the port")
    p = commands.command(group, "deploy", deploy, "add or replace a deployment (0%% traffic until set)")
    p.add_argument("name")
    p.add_argument("deployment")
    p.add_argument("model", help="NAME:VERSION, models:/NAME/VERSION or models:/NAME@ALIAS")
    p.add_argument("--scoring-script", help="score.py with init() and run(raw_data)")
    p.add_argument("--environment", help="run it in this environment's virtualenv (a name or envs/NAME.yaml)")
    p.add_argument("--target", choices=["local", "docker"], default="local", help="docker: run it as a container")
    p.add_argument("--instances", type=int, default=1, help="worker processes serving it")
    p.add_argument("--no-collect", action="store_true", help="do not keep inputs and outputs")
    add_resource_flags(p, "per instance")
    p = commands.command(group, "traffic", traffic, "split live traffic, e.g. blue=90 green=10")
    p.add_argument("name")
    p.add_argument("split", nargs="+", metavar="DEPLOYMENT=PERCENT")
    p = commands.command(group, "mirror", mirror, "mirror a share of traffic to one deployment, e.g. green=20")
    p.add_argument("name")
    p.add_argument("split", nargs="+", metavar="DEPLOYMENT=PERCENT")
    p = commands.command(group, "shadow", shadow, "how a mirrored deployment's answers compare with live ones")
    p.add_argument("name")
    p.add_argument("deployment")
    p = commands.command(group, "invoke", invoke, "send one request to /score")
    p.add_argument("name")
    p.add_argument("--data", help="the JSON body")
    p.add_argument("--file", help="a file holding the JSON body")
    p.add_argument("--deployment", help="send it to this deployment")
    commands.command(group, "list", list_endpoints, "list endpoints (crashed processes are reported and restarted)")
    p = commands.command(group, "show", show, "show an endpoint")
    p.add_argument("name")
    p.add_argument("--keys", action="store_true", help="print the endpoint's key")
    p = commands.command(group, "logs", logs, "a deployment's log, or the endpoint's router log")
    p.add_argument("name")
    p.add_argument("deployment", nargs="?")
    p.add_argument("--lines", type=int, default=100)
    p = commands.command(group, "delete", delete, "stop and remove an endpoint")
    p.add_argument("name")


def batch_create(ws: Workspace, a: argparse.Namespace) -> Result:
    endpoint = ws.batch.create(
        a.name,
        a.model,
        scoring_script=a.scoring_script,
        mini_batch_size=a.mini_batch_size,
        max_concurrency=a.max_concurrency,
        output_action=a.output_action,
        error_threshold=a.error_threshold,
        retries=a.retries,
        timeout=a.timeout,
        onnx=not a.no_onnx,
        resources=from_flags(a.cpu, a.memory, a.gpu),
    )
    return result(endpoint, f"Batch endpoint {a.name} scores with {endpoint.model}.")


def batch_invoke(ws: Workspace, a: argparse.Namespace) -> Result:
    outcome = ws.batch.invoke(a.name, a.input, progress=not getattr(a, "json", False))
    return result(
        outcome, f"Scored {outcome.rows} rows from {outcome.files} file(s): {outcome.output or 'summary only'}"
    )


def batch_list(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.batch.list())


def batch_show(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.batch.get(a.name))


def batch_delete(ws: Workspace, a: argparse.Namespace) -> Result:
    ws.batch.delete(a.name)
    return result({"name": a.name, "deleted": True}, f"Deleted batch endpoint {a.name}.")


def add_batch_commands(commands: Commands) -> None:
    group = commands.group("batch", "batch endpoints: score folders of CSV/Parquet files")
    p = commands.command(group, "create", batch_create, "create a batch endpoint for a model")
    p.add_argument("name")
    p.add_argument("model", help="NAME:VERSION, models:/NAME/VERSION or models:/NAME@ALIAS")
    p.add_argument("--scoring-script", help="score.py with init() and run(mini_batch)")
    p.add_argument("--mini-batch-size", type=int, default=10, help="files per mini-batch")
    p.add_argument("--max-concurrency", type=int, default=2, help="worker processes")
    p.add_argument("--output-action", choices=["append_row", "summary_only"], default="append_row")
    p.add_argument("--error-threshold", type=int, default=-1, help="failed mini-batches tolerated (-1: all)")
    p.add_argument("--retries", type=int, default=3)
    p.add_argument("--timeout", type=float, default=30, help="seconds per file of a mini-batch")
    p.add_argument("--no-onnx", action="store_true", help="score the model itself, not its ONNX conversion")
    add_resource_flags(p, "per worker")
    p = commands.command(group, "invoke", batch_invoke, "score a file or a folder (resumes an interrupted run)")
    p.add_argument("name")
    p.add_argument("input")
    commands.command(group, "list", batch_list, "list batch endpoints")
    p = commands.command(group, "show", batch_show, "show a batch endpoint")
    p.add_argument("name")
    p = commands.command(group, "delete", batch_delete, "delete a batch endpoint")
    p.add_argument("name")
