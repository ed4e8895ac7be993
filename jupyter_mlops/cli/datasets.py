"""``jupyter mlops datasets …``: versioned data assets (content-hashed, profiled, usage tracked)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jupyter_mlops.cli.core import result

if TYPE_CHECKING:
    import argparse

    from jupyter_mlops.cli.core import Commands
    from jupyter_mlops.render import Result
    from jupyter_mlops.workspace import Workspace


def datasets_register(ws: Workspace, a: argparse.Namespace) -> Result:
    version = ws.datasets.register(a.name, a.path, description=a.description)
    return result(version, f"{version.name} is version {version.version} (sha256 {version.digest[:12]}).")


def datasets_list(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.datasets.list())


def datasets_show(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.datasets.get(a.name, a.version))


def datasets_usage(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.datasets.usage(a.name, a.version))


def add_commands(commands: Commands) -> None:
    command = commands.command
    datasets = commands.group("datasets", "versioned data assets (content-hashed, profiled, usage tracked)")
    p = command(datasets, "register", datasets_register, "register a CSV/Parquet file (same content: same version)")
    p.add_argument("name")
    p.add_argument("path")
    p.add_argument("--description")
    command(datasets, "list", datasets_list, "list dataset versions")
    p = command(datasets, "show", datasets_show, "show a dataset version and its profile")
    p.add_argument("name")
    p.add_argument("version", nargs="?")
    p = command(datasets, "usage", datasets_usage, "which runs read a dataset")
    p.add_argument("name")
    p.add_argument("version", nargs="?", type=int)
