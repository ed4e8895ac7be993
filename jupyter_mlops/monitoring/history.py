"""The history of a monitor: every run's figures, one row per signal and feature, in the metadata store.

MLflow keeps each run's metrics too, but reading a time series back from it costs one request per run; the store
answers the whole series with one indexed query, which is what a chart over months of runs needs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, ClassVar

from jupyter_mlops.records import Record

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from jupyter_mlops.workspace import Workspace

COLUMNS = ["time", "run_id", "signal", "feature", "value", "threshold", "alert"]


@dataclass(frozen=True)
class MonitorFigure(Record):
    """One figure of one run: ``signal`` for ``feature`` (None: the whole window), against its ``threshold``."""

    time: datetime
    run_id: str | None
    signal: str
    feature: str | None
    value: float
    threshold: float | None
    alert: bool
    table_columns: ClassVar[tuple[str, ...]] = ("time", "signal", "feature", "value", "threshold", "alert")


def figure(
    signal: str, value: float, *, feature: str | None = None, threshold: float | None = None, alert: bool = False
) -> dict[str, Any]:
    """A figure as a run collects it, before it knows its run and time."""
    return {
        "signal": signal,
        "feature": feature,
        "value": float(value),
        "threshold": None if threshold is None else float(threshold),
        "alert": bool(alert),
    }


def metric_name(signal: str, feature: str | None) -> str:
    """The MLflow metric of the run that holds the same figure: ``drift_score.f0``, ``drift_share``, ..."""
    return signal if feature is None else f"{signal}.{feature}"


def write(session: Session, monitor: str, run_id: str | None, time: datetime, figures: list[dict[str, Any]]) -> None:
    """Add the figures of one run in the caller's transaction (the one that records the run's result)."""
    from sqlalchemy import insert

    from jupyter_mlops.store.monitors import MonitorFigureRecord

    if figures:
        rows = [{"monitor": monitor, "run_id": run_id, "time": time, **f} for f in figures]
        session.execute(insert(MonitorFigureRecord), rows)


def delete(session: Session, monitor: str) -> None:
    from sqlalchemy import delete as sql_delete

    from jupyter_mlops.store.monitors import MonitorFigureRecord

    session.execute(sql_delete(MonitorFigureRecord).where(MonitorFigureRecord.monitor == monitor))


def read(ws: Workspace, monitor: str, *, since: datetime | str | None = None, signal: str | None = None) -> Any:
    """The figures of ``monitor`` as a DataFrame (``COLUMNS``), oldest first, in one query: ``since`` keeps the runs
    whose window ended at or after it, ``signal`` one signal."""
    import pandas as pd
    from sqlalchemy import select

    from jupyter_mlops.store.monitors import MonitorFigureRecord as F

    query = select(*_raw(F)).where(F.monitor == monitor)
    if since is not None:
        query = query.where(F.time >= _moment(since))
    if signal is not None:
        query = query.where(F.signal == signal)
    query = query.order_by(F.time, F.id)
    with ws.store.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            frame = _columns_at_once(conn, query)
        else:
            frame = pd.DataFrame.from_records(conn.execute(query).fetchall(), columns=COLUMNS)
    frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
    frame["value"] = frame["value"].astype(float)
    frame["threshold"] = frame["threshold"].astype(float)
    frame["alert"] = frame["alert"].astype(bool)
    return frame


_SEP, _NULL = "\x1f", "\x1e"  # ASCII unit and record separators: in no name, time or number


def _columns_at_once(conn: Any, query: Any) -> Any:
    """SQLite hands rows over one Python tuple at a time, which costs more than the query on a long history: one
    row of ``group_concat`` texts (in the query's order), split in C, carries the columns instead."""
    import numpy as np
    import pandas as pd
    from sqlalchemy import case, func, literal, select

    sub = query.subquery()
    texts = [
        func.group_concat(func.coalesce(sub.c[c], literal(_NULL)), literal(_SEP))
        for c in ("time", "run_id", "signal", "feature")
    ]
    numbers = [  # 17 significant digits: SQLite's own text of a float keeps 15, and the figures must read back exact
        func.group_concat(case((sub.c[c].is_(None), literal("nan")), else_=func.printf("%.17g", sub.c[c])), ",")
        for c in ("value", "threshold")
    ]
    row = conn.execute(select(*texts, *numbers, func.group_concat(sub.c.alert, literal(",")))).one()
    if row[0] is None:
        return pd.DataFrame({c: [] for c in COLUMNS})

    def text(value: str) -> list[str | None]:
        items = value.split(_SEP)
        return [None if v == _NULL else v for v in items] if _NULL in value else items

    return pd.DataFrame(
        {
            "time": row[0].split(_SEP),
            "run_id": text(row[1]),
            "signal": row[2].split(_SEP),
            "feature": text(row[3]),
            "value": np.array(row[4].split(","), dtype=float),
            "threshold": np.array(row[5].split(","), dtype=float),
            "alert": np.array(row[6].split(","), dtype=int).astype(bool),
        }
    )


def _raw(table: Any) -> list[Any]:
    """The columns as the database holds them: SQLAlchemy's per-row conversion of datetimes costs more than the
    query itself on a long history, and pandas parses the whole column at once instead (SQLite's ISO text, or the
    datetimes other databases hand back)."""
    from sqlalchemy import String, type_coerce

    columns = (table.run_id, table.signal, table.feature, table.value, table.threshold, table.alert)
    return [type_coerce(table.time, String()), *columns]


def _moment(value: datetime | str) -> datetime:
    from jupyter_mlops.exceptions import InvalidInput

    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidInput(
                f"Cannot read the time {value!r}: write it in ISO 8601, e.g. 2026-01-31T12:00Z."
            ) from exc
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class EndpointChange(Record):
    """A deployment or a traffic change of the monitored endpoint: an annotation on the monitor's chart."""

    time: datetime
    kind: str  # deployed, traffic
    label: str
    table_columns: ClassVar[tuple[str, ...]] = ("time", "kind", "label")


CHANGE_TYPES = {"deployment.created": "deployed", "deployment.traffic_changed": "traffic"}


def endpoint_changes(ws: Workspace, endpoint: str, *, since: datetime | str | None = None) -> list[EndpointChange]:
    """The deployments and traffic changes of ``endpoint`` from its event log, oldest first (one indexed query)."""
    from sqlalchemy import or_, select

    from jupyter_mlops.store.events import EventRecord as E

    query = select(E.type, E.time, E.data).where(
        E.type.in_(CHANGE_TYPES),
        or_(E.subject == f"endpoints/{endpoint}", E.subject.like(f"endpoints/{endpoint}/deployments/%")),
    )
    if since is not None:
        query = query.where(E.time >= _moment(since))
    with ws.store.session() as session:
        found = session.execute(query.order_by(E.seq)).all()
    out = []
    for kind, moment, text in found:
        data = json.loads(text)
        if kind == "deployment.created":
            label = f"{data.get('deploymentName', '?')} deployed ({data.get('modelIds') or '?'})"
        else:
            label = "traffic " + " / ".join(f"{n} {p}" for n, p in (data.get("traffic") or {}).items())
        stamp = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
        out.append(EndpointChange(time=stamp, kind=CHANGE_TYPES[kind], label=label))
    return out


def frame_figures(frame: Any) -> list[MonitorFigure]:
    """The rows of a history frame as records (the REST face serves them)."""
    out = []
    for time, run_id, signal, feature, value, threshold, alert in frame[COLUMNS].itertuples(index=False):
        out.append(
            MonitorFigure(
                time=time.to_pydatetime(),
                run_id=run_id,
                signal=signal,
                feature=None if feature is None or feature != feature else str(feature),
                value=float(value),
                threshold=None if threshold != threshold else float(threshold),
                alert=bool(alert),
            )
        )
    return out
