"""Requests, errors and a latency histogram per deployment, served at ``/metrics`` in Prometheus text format.

The request path only adds to plain counters under a lock (a microsecond); a background thread publishes a snapshot
of them every ``PUBLISH_S`` into the endpoint's metrics folder (one file per worker process, replaced atomically),
and ``/metrics`` adds up every worker's latest snapshot, whichever worker answers. prometheus_client renders the
text from those sums through a custom collector. The shadow comparison's counters of mirror deployments
(``shadow.py``) travel in the same snapshots, so they are summed the same way.
"""

from __future__ import annotations

import bisect
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from jupyter_mlops.deploy import shadow

MULTIPROCESS_ENV = "MLOPS_METRICS_DIR"  # the folder the workers of one endpoint share
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
PUBLISH_S = 0.2


class Metrics:
    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        folder = folder if folder is not None else os.environ.get(MULTIPROCESS_ENV)
        self.folder = Path(folder) if folder else None
        self._lock = threading.Lock()
        # deployment -> [requests, errors, latency sum, count per bucket (the last one: above the largest bound)]
        self._counts: dict[str, list[Any]] = {}
        self._shadow: dict[str, dict[str, Any]] = {}  # mirror deployment -> shadow.new_counts()
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            threading.Thread(target=self._publish_loop, name="mlops-metrics", daemon=True).start()

    def observe(self, deployment: str, seconds: float, *, error: bool) -> None:
        with self._lock:
            counts = self._counts.get(deployment)
            if counts is None:
                counts = self._counts[deployment] = [0, 0, 0.0, [0] * (len(BUCKETS) + 1)]
            counts[0] += 1
            counts[1] += error
            counts[2] += seconds
            counts[3][bisect.bisect_left(BUCKETS, seconds)] += 1

    def observe_shadow(self, deployment: str, seconds: float, *, error: bool, found: shadow.Comparison | None) -> None:
        """One mirrored request scored off the request path, and what comparing it with live found."""
        with self._lock:
            counts = self._shadow.get(deployment)
            if counts is None:
                counts = self._shadow[deployment] = shadow.new_counts()
            shadow.fold(counts, seconds, error=error, found=found)

    def shadow_dropped(self, deployment: str) -> None:
        with self._lock:
            counts = self._shadow.get(deployment)
            if counts is None:
                counts = self._shadow[deployment] = shadow.new_counts()
            counts["dropped"] += 1

    def snapshot(self) -> dict[str, Any]:
        """``{"deployments": {name: counts}, "shadow": {name: shadow counts}}``, copied."""
        with self._lock:
            return {
                "deployments": {name: [c[0], c[1], c[2], list(c[3])] for name, c in self._counts.items()},
                "shadow": {
                    name: {k: list(v) if isinstance(v, list) else v for k, v in c.items()}
                    for name, c in self._shadow.items()
                },
            }

    def render(self) -> str:
        """The Prometheus text of every worker's counters (this one's are current, the others' at most
        ``PUBLISH_S`` old)."""
        from prometheus_client import CollectorRegistry, generate_latest

        mine = self.snapshot()
        totals, shadows = mine["deployments"], mine["shadow"]
        if self.folder is not None:
            self._publish(mine)
            totals, shadows = {}, {}
            for path in self.folder.glob("*.json"):
                try:
                    worker = json.loads(path.read_text())
                except (OSError, ValueError):  # replaced while read: the next scrape has it
                    continue
                for name, counts in worker.get("deployments", {}).items():
                    _add(totals.setdefault(name, [0, 0, 0.0, [0] * (len(BUCKETS) + 1)]), counts)
                for name, counts in worker.get("shadow", {}).items():
                    shadow.add_counts(shadows.setdefault(name, shadow.new_counts()), counts)
        registry = CollectorRegistry()
        registry.register(_Families(totals, shadows))
        return generate_latest(registry).decode()

    def _publish(self, counts: dict[str, Any]) -> None:
        assert self.folder is not None
        path = self.folder / f"{os.getpid()}.json"
        staging = path.with_suffix(".tmp")
        staging.write_text(json.dumps(counts))
        os.replace(staging, path)

    def _publish_loop(self) -> None:
        published = None
        while True:
            time.sleep(PUBLISH_S)
            counts = self.snapshot()
            if counts != published:
                self._publish(counts)
                published = counts


def _add(into: list[Any], counts: list[Any]) -> None:
    into[0] += counts[0]
    into[1] += counts[1]
    into[2] += counts[2]
    into[3] = [a + b for a, b in zip(into[3], counts[3], strict=True)]


class _Families:
    """A prometheus_client collector over summed counts."""

    def __init__(self, totals: dict[str, list[Any]], shadows: dict[str, dict[str, Any]] | None = None) -> None:
        self.totals = totals
        self.shadows = shadows or {}

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        requests = CounterMetricFamily("mlops_requests", "Scored requests", labels=["deployment"])
        errors = CounterMetricFamily("mlops_errors", "Failed requests", labels=["deployment"])
        latency = HistogramMetricFamily("mlops_request_latency_seconds", "Scoring latency", labels=["deployment"])
        for name, (count, failed, total, buckets) in sorted(self.totals.items()):
            requests.add_metric([name], count)
            errors.add_metric([name], failed)
            cumulative, running = [], 0
            for bound, n in zip([*map(str, BUCKETS), "+Inf"], buckets, strict=True):
                running += n
                cumulative.append((bound, running))
            latency.add_metric([name], cumulative, total)
        yield requests
        yield errors
        yield latency
        if self.shadows:
            yield from shadow.families(self.shadows)
