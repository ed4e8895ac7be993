"""``jupyter mlops audit --model NAME``: each version's who, why, where it ran and how it is used."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from jupyter_mlops.cli.core import result

if TYPE_CHECKING:
    import argparse

    from jupyter_mlops.cli.core import Commands
    from jupyter_mlops.render import Result
    from jupyter_mlops.workspace import Workspace


def audit(ws: Workspace, a: argparse.Namespace) -> Result:
    from jupyter_mlops.audit import audit as build
    from jupyter_mlops.audit import to_csv

    entries = build(ws, a.model)
    if a.csv:
        Path(a.csv).write_text(to_csv(entries))
    return result(entries, f"Audit of {a.model} written to {a.csv}." if a.csv else None)


def add_commands(commands: Commands) -> None:
    p = commands.single("audit", audit, "who registered each version of a model, why, where it ran, how it is used")
    p.add_argument("--model", required=True)
    p.add_argument("--csv", metavar="FILE", help="also write the audit as CSV")
