"""``jupyter mlops export DIR``: the workspace as a star schema for Power BI, Tableau or DuckDB."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jupyter_mlops.cli.core import result
from jupyter_mlops.exceptions import UsageError

if TYPE_CHECKING:
    import argparse

    from jupyter_mlops.cli.core import Commands
    from jupyter_mlops.render import Result
    from jupyter_mlops.workspace import Workspace


def export(ws: Workspace, a: argparse.Namespace) -> Result:
    from datetime import datetime

    from jupyter_mlops.export import export as write

    try:
        since = datetime.fromisoformat(a.since) if a.since else None
    except ValueError:
        raise UsageError(
            f"--since {a.since!r}: give an ISO 8601 date or time, e.g. 2026-11-01 or 2026-11-01T12:00."
        ) from None
    done = write(ws, a.dir, format=a.format, since=since)
    new = ", ".join(f"{table} {count:,}" for table, count in done.rows.items() if table.startswith("fact_"))
    return result(done, f"Exported to {done.path} ({done.format}) in {done.seconds:.2f} s: new rows: {new}.")


def add_commands(commands: Commands) -> None:
    p = commands.single("export", export, "write a star schema (facts and dimensions) for Power BI, Tableau, DuckDB")
    p.add_argument("dir", help="the folder to write (or extend: only what is new is added)")
    p.add_argument("--format", choices=["parquet", "duckdb"], default="parquet")
    p.add_argument("--since", help="export facts from this ISO 8601 moment on")
