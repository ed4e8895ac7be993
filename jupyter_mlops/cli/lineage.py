"""``jupyter mlops lineage ENTITY``: where a model version, run or file came from, and what used it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jupyter_mlops.cli.core import result

if TYPE_CHECKING:
    import argparse

    from jupyter_mlops.cli.core import Commands
    from jupyter_mlops.render import Result
    from jupyter_mlops.workspace import Workspace


def lineage(ws: Workspace, a: argparse.Namespace) -> Result:
    from jupyter_mlops.lineage import lineage as build

    node = build(ws, a.entity, depth=a.depth)
    return result(node.to_dict(), node.to_text())


def add_commands(commands: Commands) -> None:
    p = commands.single("lineage", lineage, "where a model version, run or file came from, and what used it")
    p.add_argument("entity", help="NAME:VERSION, a run id, or a file path")
    p.add_argument("--depth", type=int, default=6)
