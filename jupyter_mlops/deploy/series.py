"""The live figures of an endpoint over time: requests, errors, p50/p99 and traffic share per deployment, per
interval (a minute by default), kept in the metadata store for a retention (30 days by default).

The endpoint's supervisor (``watch``) calls ``SeriesWriter.tick`` on every look at its processes; once per
interval it reads what every worker published into the endpoint's metrics folder (cumulative counters, one file
per worker process), writes the difference since the last interval, and deletes what is older than the
retention. A worker that restarted starts its counters again under a new file, so nothing is counted twice; what
was served while no supervisor ran is not in the series (the first interval after a start is a baseline).
``MLOPS_SERIES_INTERVAL_S`` and ``MLOPS_SERIES_RETENTION_DAYS`` in the supervisor's environment change both.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from jupyter_mlops.deploy.metrics import BUCKETS
from jupyter_mlops.records import Record

if TYPE_CHECKING:
    import pandas as pd

    from jupyter_mlops.store.endpoints import EndpointRecord
    from jupyter_mlops.workspace import Workspace

INTERVAL_ENV = "MLOPS_SERIES_INTERVAL_S"
RETENTION_ENV = "MLOPS_SERIES_RETENTION_DAYS"
DEFAULT_INTERVAL_S = 60.0
DEFAULT_RETENTION_DAYS = 30.0
COLUMNS = ("time", "deployment", "requests", "errors", "error_rate", "request_rate", "p50_ms", "p99_ms", "traffic")
Counts = dict[str, list[Any]]  # deployment -> [requests, errors, latency sum, count per bucket]


@dataclass(frozen=True)
class LivePoint(Record):
    """What one deployment served in the interval that ended at ``time``."""

    time: datetime
    deployment: str
    interval_s: float
    requests: int
    errors: int
    p50_ms: float | None
    p99_ms: float | None
    traffic: int
    mirror: int
    table_columns: ClassVar[tuple[str, ...]] = ("time", "deployment", "requests", "errors", "p50_ms", "p99_ms")


def quantile_ms(buckets: list[int], q: float) -> float | None:
    """The ``q`` quantile of a latency histogram in milliseconds, interpolated inside its bucket as Prometheus's
    ``histogram_quantile`` does; the open last bucket answers its lower bound."""
    total = sum(buckets)
    if total == 0:
        return None
    rank, running = q * total, 0
    for index, count in enumerate(buckets):
        if count and running + count >= rank:
            if index == len(BUCKETS):
                return BUCKETS[-1] * 1000
            lower = BUCKETS[index - 1] if index else 0.0
            return (lower + (BUCKETS[index] - lower) * (rank - running) / count) * 1000
        running += count
    return BUCKETS[-1] * 1000


def read_workers(folder: Path) -> dict[str, Counts]:
    """Each worker's published counters, by file; a file being replaced, or an entry of another shape, is
    skipped (the next interval has it)."""
    workers: dict[str, Counts] = {}
    for path in folder.glob("*.json"):
        try:
            published = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(published.get("deployments"), dict):  # beside the shadow comparison's counters
            published = published["deployments"]
        workers[path.name] = {
            name: counts
            for name, counts in published.items()
            if isinstance(counts, list)
            and len(counts) == 4
            and isinstance(counts[3], list)
            and len(counts[3]) == len(BUCKETS) + 1
        }
    return workers


def difference(before: dict[str, Counts], after: dict[str, Counts]) -> Counts:
    """Per deployment, what every worker counted between two reads (a worker's counter that went down started
    again: all of it is new)."""
    served: Counts = {}
    for worker, counts in after.items():
        previous = before.get(worker, {})
        for name, now in counts.items():
            then = previous.get(name)
            if then is None or now[0] < then[0]:
                then = [0, 0, 0.0, [0] * len(now[3])]
            into = served.setdefault(name, [0, 0, 0.0, [0] * len(now[3])])
            into[0] += now[0] - then[0]
            into[1] += now[1] - then[1]
            into[2] += now[2] - then[2]
            into[3] = [a + b - c for a, b, c in zip(into[3], now[3], then[3], strict=True)]
    return served


class SeriesWriter:
    """One endpoint's series, written by its supervisor."""

    def __init__(self, ws: Workspace, endpoint: str) -> None:
        self.ws = ws
        self.endpoint = endpoint
        self.interval_s = float(os.environ.get(INTERVAL_ENV) or DEFAULT_INTERVAL_S)
        self.retention = timedelta(days=float(os.environ.get(RETENTION_ENV) or DEFAULT_RETENTION_DAYS))
        self.folder = ws.layout.metrics(endpoint)
        self.before = read_workers(self.folder)
        self.due = time.monotonic() + self.interval_s

    def tick(self, record: EndpointRecord) -> bool:
        """Write the interval that ended, if one did; True when it wrote."""
        now = time.monotonic()
        if now < self.due:
            return False
        self.due = max(self.due + self.interval_s, now)  # a late tick does not make a burst of short intervals
        after = read_workers(self.folder)
        served, self.before = difference(self.before, after), after
        self.write(served, json.loads(record.traffic or "{}"), json.loads(record.mirror or "{}"))
        return True

    def write(self, served: Counts, traffic: dict[str, int], mirror: dict[str, int]) -> None:
        from jupyter_mlops.store.series import SeriesPoint

        at = datetime.now(timezone.utc)
        names = sorted(set(served) | {n for n, p in traffic.items() if p} | {n for n, p in mirror.items() if p})
        with self.ws.store.session() as session:
            for name in names:
                requests, errors, _, buckets = served.get(name, [0, 0, 0.0, [0] * (len(BUCKETS) + 1)])
                session.add(
                    SeriesPoint(
                        endpoint=self.endpoint,
                        deployment=name,
                        at=at,
                        interval_s=self.interval_s,
                        requests=requests,
                        errors=errors,
                        p50_ms=quantile_ms(buckets, 0.5),
                        p99_ms=quantile_ms(buckets, 0.99),
                        traffic=int(traffic.get(name, 0)),
                        mirror=int(mirror.get(name, 0)),
                    )
                )
            session.query(SeriesPoint).filter(
                SeriesPoint.endpoint == self.endpoint, SeriesPoint.at < at - self.retention
            ).delete(synchronize_session=False)


def points(ws: Workspace, endpoint: str, *, since: datetime | None = None) -> list[LivePoint]:
    """The stored points of ``endpoint``, oldest first."""
    from jupyter_mlops.store.schema import as_utc
    from jupyter_mlops.store.series import SeriesPoint

    with ws.store.session() as session:
        query = session.query(SeriesPoint).filter(SeriesPoint.endpoint == endpoint)
        if since is not None:
            query = query.filter(SeriesPoint.at >= since)
        rows = query.order_by(SeriesPoint.at, SeriesPoint.deployment).all()
    return [
        LivePoint(
            time=as_utc(r.at),
            deployment=r.deployment,
            interval_s=r.interval_s,
            requests=r.requests,
            errors=r.errors,
            p50_ms=r.p50_ms,
            p99_ms=r.p99_ms,
            traffic=r.traffic,
            mirror=r.mirror,
        )
        for r in rows
    ]


def frame(found: list[LivePoint]) -> pd.DataFrame:
    """The points as a DataFrame with the rates a chart wants (requests per second, errors per request)."""
    import pandas as pd

    table = pd.DataFrame([p.__dict__ for p in found], columns=[*COLUMNS, "interval_s", "mirror"])
    if len(table):
        table["request_rate"] = table["requests"] / table["interval_s"]
        table["error_rate"] = (table["errors"] / table["requests"].where(table["requests"] > 0)).fillna(0.0)
    return table[[*COLUMNS, "mirror"]]
