"""``jupyter mlops export DIR``: the workspace as a star schema that Power BI, Tableau or DuckDB read directly.

Facts (appended, only what is new since the last export of DIR): ``fact_requests`` (every collected request with
its input and output as JSON text), ``fact_labels``, ``fact_monitor_figures`` (one row per figure of a monitor run:
drift scores, null rates, quality), ``fact_events``, ``fact_live_figures`` (an endpoint's requests, errors,
p50/p99 and traffic share per deployment and interval). Dimensions (rewritten each time): ``dim_models``,
``dim_versions``, ``dim_endpoints``, ``dim_deployments``, ``dim_monitors``. Keys: ``(endpoint, deployment)`` joins
requests to deployments, ``(model_name, model_version)`` deployments to versions, ``model`` versions to models,
``request_id`` labels to requests, ``monitor`` figures to monitors.

``parquet``: a folder per table (``fact_requests/part-….parquet``), what Power BI's Folder connector and DuckDB's
``read_parquet('DIR/fact_requests/*.parquet')`` read. ``duckdb``: one ``mlops.duckdb`` file with the same tables.
DuckDB does the heavy part (reading the collected JSON lines, writing Parquet), so a million requests take seconds.
``DIR/_export_state.json`` holds how far each source was exported.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops.exceptions import InvalidInput
from jupyter_mlops.records import Record

if TYPE_CHECKING:
    import pandas as pd

    from jupyter_mlops.workspace import Workspace

FORMATS = ("parquet", "duckdb")
STATE_FILE = "_export_state.json"
DATABASE_FILE = "mlops.duckdb"
EPOCH = "1970-01-01T00:00:00+00:00"


@dataclass(frozen=True)
class Export(Record):
    """What one export wrote: rows per table (facts: the new rows only) and how long it took."""

    path: str
    format: str
    rows: dict[str, int]
    seconds: float


def export(ws: Workspace, dest: str | Path, *, format: str = "parquet", since: datetime | None = None) -> Export:
    """Write (or extend) the star schema in ``dest``; ``since`` exports facts from that moment only."""
    duckdb = _duckdb()
    if format not in FORMATS:
        raise InvalidInput(f"Unknown export format {format!r}: choose {' or '.join(FORMATS)}.")
    folder = Path(dest).expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        raise InvalidInput(f"{folder} is a file: export into a folder.", path=str(folder))
    folder.mkdir(parents=True, exist_ok=True)
    state = _state(folder, since)
    started = time.perf_counter()
    connection = duckdb.connect(str(folder / DATABASE_FILE) if format == "duckdb" else ":memory:")
    writer = _Writer(connection, folder, format)
    try:
        rows = {
            "fact_requests": _requests(ws, writer, state),
            "fact_labels": _labels(ws, writer, state),
            "fact_monitor_figures": _monitor_figures(ws, writer, state),
            "fact_events": _events(ws, writer, state),
            "fact_live_figures": _live_figures(ws, writer, state),
        }
        for table, frame in _dimensions(ws).items():
            rows[table] = writer.replace(table, frame)
    finally:
        connection.close()
    (folder / STATE_FILE).write_text(json.dumps(state, indent=2))
    return Export(path=str(folder), format=format, rows=rows, seconds=round(time.perf_counter() - started, 3))


class _Writer:
    """Appends facts and replaces dimensions, as Parquet part files or as tables of a DuckDB file."""

    def __init__(self, connection: Any, folder: Path, format: str) -> None:
        self.db, self.folder, self.format = connection, folder, format
        self.part = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")

    def append(self, table: str, query: str, parameters: list[Any] | None = None) -> int:
        count = self.db.execute(f"SELECT count(*) FROM ({query})", parameters or []).fetchone()[0]
        if not count:
            return 0
        if self.format == "parquet":
            target = self.folder / table / f"part-{self.part}.parquet"
            target.parent.mkdir(exist_ok=True)
            self.db.execute(f"COPY ({query}) TO '{_quoted(target)}' (FORMAT parquet)", parameters or [])
        elif self.db.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [table]).fetchone()[0]:
            self.db.execute(f"INSERT INTO {table} {query}", parameters or [])
        else:
            self.db.execute(f"CREATE TABLE {table} AS {query}", parameters or [])
        return int(count)

    def append_frame(self, table: str, frame: pd.DataFrame) -> int:
        if frame.empty:
            return 0
        self.db.register("frame", frame)
        try:
            return self.append(table, "SELECT * FROM frame")
        finally:
            self.db.unregister("frame")

    def replace(self, table: str, frame: pd.DataFrame) -> int:
        self.db.register("frame", frame)
        try:
            if self.format == "parquet":
                target = self.folder / table
                target.mkdir(exist_ok=True)
                for old in target.glob("*.parquet"):
                    old.unlink()
                self.db.execute(
                    f"COPY (SELECT * FROM frame) TO '{_quoted(target / 'part-0.parquet')}' (FORMAT parquet)"
                )
            else:
                self.db.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM frame")
        finally:
            self.db.unregister("frame")
        return len(frame)


def _requests(ws: Workspace, writer: _Writer, state: dict[str, Any]) -> int:
    root = ws.layout.collected("x").parent
    after = state["requests_after"]
    by_endpoint: dict[str, list[str]] = {}
    for path in sorted(root.glob("*/*/*.jsonl")) if root.is_dir() else []:
        if path.name[:10] >= after[:10]:  # one file per day and worker: older days hold nothing newer
            by_endpoint.setdefault(path.parent.parent.name, []).append(str(path))
    if not by_endpoint:
        return 0
    columns = (
        "{'time': 'TIMESTAMPTZ', 'deployment': 'VARCHAR', 'request_id': 'VARCHAR', 'input': 'JSON', 'output': 'JSON'}"
    )
    parts = [
        f"SELECT time AS request_time, '{_quoted(endpoint)}' AS endpoint, deployment, request_id, "
        "starts_with(request_id, 'mirror-') AS mirrored, CAST(input AS VARCHAR) AS input, "
        f"CAST(output AS VARCHAR) AS output FROM read_json({files!r}, format='newline_delimited', columns={columns}) "
        "WHERE time > CAST(? AS TIMESTAMPTZ)"
        for endpoint, files in by_endpoint.items()
    ]
    query = " UNION ALL ".join(parts)
    writer.db.execute(f"CREATE OR REPLACE TEMP TABLE staged_requests AS {query}", [after] * len(parts))  # parsed once
    newest = writer.db.execute("SELECT max(request_time) FROM staged_requests").fetchone()[0]
    count = writer.append("fact_requests", "SELECT * FROM staged_requests")
    writer.db.execute("DROP TABLE staged_requests")
    if newest is not None:
        state["requests_after"] = newest.astimezone(timezone.utc).isoformat()
    return count


def _labels(ws: Workspace, writer: _Writer, state: dict[str, Any]) -> int:
    import pandas as pd

    folder = ws.layout.labels()
    rows: list[dict[str, Any]] = []
    done = state.setdefault("labels", {})
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        lines = path.read_text(encoding="utf-8").splitlines()
        for line in lines[done.get(path.stem, 0) :]:
            entry = json.loads(line)
            rows.append({"endpoint": path.stem, "request_id": entry["request_id"], "label": json.dumps(entry["label"])})
        done[path.stem] = len(lines)
    return writer.append_frame("fact_labels", pd.DataFrame(rows, columns=["endpoint", "request_id", "label"]))


def _monitor_figures(ws: Workspace, writer: _Writer, state: dict[str, Any]) -> int:
    import pandas as pd

    after = int(state["monitor_runs_after_ms"])
    rows: list[dict[str, Any]] = []
    newest = after
    for monitor in ws.monitors.list():
        experiment = ws.client.get_experiment_by_name(f"monitor-{monitor.name}")
        if experiment is None:
            continue
        runs = ws.client.search_runs([experiment.experiment_id], filter_string=f"attributes.start_time > {after}")
        for run in runs:
            moment = datetime.fromtimestamp(run.info.start_time / 1000, timezone.utc)
            newest = max(newest, run.info.start_time)
            for key, value in run.data.metrics.items():
                figure, _, feature = key.partition(".")
                rows.append(
                    {
                        "monitor": monitor.name,
                        "run_id": run.info.run_id,
                        "run_time": moment,
                        "figure": figure,
                        "feature": feature or None,
                        "value": float(value),
                    }
                )
    state["monitor_runs_after_ms"] = newest
    columns = ["monitor", "run_id", "run_time", "figure", "feature", "value"]
    return writer.append_frame("fact_monitor_figures", pd.DataFrame(rows, columns=columns))


def _live_figures(ws: Workspace, writer: _Writer, state: dict[str, Any]) -> int:
    """The endpoints' live figures per deployment and interval (``deploy.series``) written since the last export."""
    import pandas as pd

    from jupyter_mlops.store.schema import as_utc
    from jupyter_mlops.store.series import SeriesPoint

    after = datetime.fromisoformat(state["live_after"])
    with ws.store.session() as session:
        found = session.query(SeriesPoint).filter(SeriesPoint.at > after).order_by(SeriesPoint.at).all()
    columns = ["time", "endpoint", "deployment", "interval_s", "requests", "errors", "p50_ms", "p99_ms", "traffic"]
    columns.append("mirror")
    rows = [{c: as_utc(p.at) if c == "time" else getattr(p, c) for c in columns} for p in found]
    if found:
        state["live_after"] = as_utc(found[-1].at).isoformat()
    return writer.append_frame("fact_live_figures", pd.DataFrame(rows, columns=columns))


def _events(ws: Workspace, writer: _Writer, state: dict[str, Any]) -> int:
    import pandas as pd

    rows: list[dict[str, Any]] = []
    after = int(state["events_after"])
    while True:
        batch = ws.events.tail(after=after, limit=5000)
        if not batch:
            break
        rows += [
            {"seq": e.seq, "time": e.time, "type": e.type, "subject": e.subject, "data": json.dumps(e.data)}
            for e in batch
        ]
        after = batch[-1].seq or after
    state["events_after"] = after
    return writer.append_frame("fact_events", pd.DataFrame(rows, columns=["seq", "time", "type", "subject", "data"]))


def _dimensions(ws: Workspace) -> dict[str, pd.DataFrame]:
    import pandas as pd

    models = [
        {"name": m.name, "description": m.description, "latest_version": m.latest_version, "created_at": m.created_at}
        for m in ws.models.list_models()
    ]
    versions = [
        {
            "model": v.name,
            "version": v.version,
            "created_at": v.created_at,
            "created_by": v.created_by,
            "run_id": v.run_id,
            "source": v.source,
            "aliases": ",".join(v.aliases),
        }
        for v in ws.models.list(include_archived=True)
    ]
    endpoints, deployments = [], []
    for info in ws.endpoints.list():
        endpoints.append({"endpoint": info.name, "status": info.status, "scoring_uri": info.scoring_uri})
        for d in info.deployments:
            name, _, version = d.model.rpartition(":")
            deployments.append(
                {
                    "endpoint": info.name,
                    "deployment": d.name,
                    "model": d.model,
                    "model_name": name,
                    "model_version": int(version) if version.isdigit() else None,
                    "status": d.status,
                    "traffic": d.traffic,
                    "created_at": d.created_at,
                }
            )
    monitors = [
        {
            "monitor": m.name,
            "endpoint": m.endpoint,
            "deployment": m.deployment,
            "features": ",".join(m.features),
            "schedule_s": m.schedule_s,
        }
        for m in ws.monitors.list()
    ]
    shapes = {
        "dim_models": (models, ["name", "description", "latest_version", "created_at"]),
        "dim_versions": (versions, ["model", "version", "created_at", "created_by", "run_id", "source", "aliases"]),
        "dim_endpoints": (endpoints, ["endpoint", "status", "scoring_uri"]),
        "dim_deployments": (
            deployments,
            ["endpoint", "deployment", "model", "model_name", "model_version", "status", "traffic", "created_at"],
        ),
        "dim_monitors": (monitors, ["monitor", "endpoint", "deployment", "features", "schedule_s"]),
    }
    return {table: pd.DataFrame(rows, columns=columns) for table, (rows, columns) in shapes.items()}


def _state(folder: Path, since: datetime | None) -> dict[str, Any]:
    path = folder / STATE_FILE
    state: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    state.setdefault("requests_after", EPOCH)
    state.setdefault("events_after", 0)
    state.setdefault("monitor_runs_after_ms", 0)
    state.setdefault("live_after", EPOCH)
    if since is not None:
        moment = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
        state["requests_after"] = max(state["requests_after"], moment.astimezone(timezone.utc).isoformat())
        state["monitor_runs_after_ms"] = max(state["monitor_runs_after_ms"], int(moment.timestamp() * 1000))
        state["live_after"] = max(state["live_after"], moment.astimezone(timezone.utc).isoformat())
    return state


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError:
        raise InvalidInput(
            "The export needs DuckDB: pip install 'jupyter-mlops[export]' (or pip install duckdb)."
        ) from None
    return duckdb


def _quoted(text: str | Path) -> str:
    """For a literal inside single quotes in SQL."""
    return str(text).replace("'", "''")


__all__ = ["FORMATS", "Export", "export"]
