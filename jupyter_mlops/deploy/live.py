"""Live figures of an endpoint, read from its router's ``/metrics`` (Prometheus text format).

The router only counts (``mlops_requests``, ``mlops_errors``) and fills a latency histogram
(``mlops_request_latency_seconds``) per deployment label. A rate and recent quantiles need two readings, so a
:class:`LiveReader` remembers the previous reading of each endpoint: the request rate is over the time between two
readings, and p50/p99 over the requests of that interval (over every request since the router started when the
interval had none).
"""

from __future__ import annotations

import math
import time
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from jupyter_mlops.records import Record

if TYPE_CHECKING:
    from jupyter_mlops.deploy.endpoints import EndpointInfo

REQUESTS = "mlops_requests"
ERRORS = "mlops_errors"
LATENCY = "mlops_request_latency_seconds"
SCRAPE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class LiveStats(Record):
    deployment: str
    requests: int  # scored since the router started
    errors: int
    rate_per_s: float | None  # over the interval since the previous reading; None on the first one
    p50_ms: float | None
    p99_ms: float | None
    table_columns: ClassVar[tuple[str, ...]] = ("deployment", "requests", "errors", "rate_per_s", "p50_ms", "p99_ms")


@dataclass
class Sample:
    """One reading of ``/metrics``: per deployment, the counters and the cumulative histogram buckets."""

    requests: dict[str, float] = field(default_factory=dict)
    errors: dict[str, float] = field(default_factory=dict)
    buckets: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # (upper bound, cumulative count)


def parse_metrics(text: str) -> Sample:
    """Read the router's counters and latency histogram out of Prometheus text."""
    from prometheus_client.parser import text_string_to_metric_families

    sample = Sample()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            deployment = s.labels.get("deployment")
            if deployment is None:
                continue
            if s.name == REQUESTS + "_total":
                sample.requests[deployment] = s.value
            elif s.name == ERRORS + "_total":
                sample.errors[deployment] = s.value
            elif s.name == LATENCY + "_bucket":
                sample.buckets.setdefault(deployment, []).append((float(s.labels["le"]), s.value))
    for buckets in sample.buckets.values():
        buckets.sort()
    return sample


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus's ``histogram_quantile``: linear interpolation inside the bucket holding the q-th observation."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for upper_bound, count in buckets:
        if count >= rank:
            if math.isinf(upper_bound):  # above the last finite bucket: its bound is the best estimate
                return lower_bound
            if count == lower_count:
                return upper_bound
            return lower_bound + (upper_bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = upper_bound, count
    return lower_bound


def _difference(now: list[tuple[float, float]], before: list[tuple[float, float]]) -> list[tuple[float, float]]:
    previous = dict(before)
    return [(bound, count - previous.get(bound, 0.0)) for bound, count in now]


def scrape(metrics_url: str, timeout: float = SCRAPE_TIMEOUT_S) -> Sample:
    """Read ``/metrics``; raises ``OSError`` when the router does not answer."""
    with urllib.request.urlopen(metrics_url, timeout=timeout) as response:
        return parse_metrics(response.read().decode())


def metrics_url(info: EndpointInfo) -> str | None:
    if not info.scoring_uri:
        return None
    return info.scoring_uri.rsplit("/score", 1)[0] + "/metrics"


class LiveReader:
    """Turns successive readings of each endpoint's ``/metrics`` into rates and recent quantiles."""

    def __init__(self) -> None:
        self._previous: dict[str, tuple[float, Sample]] = {}
        self.unavailable: dict[str, str] = {}  # endpoint -> why its last reading failed

    def read(self, info: EndpointInfo) -> dict[str, LiveStats]:
        """Per deployment of ``info``; empty when the router does not answer (``unavailable`` says why)."""
        url = metrics_url(info)
        if url is None:
            self.unavailable[info.name] = f"the endpoint is {info.status}"
            return {}
        try:
            sample = scrape(url)
        except (OSError, ValueError) as exc:  # no answer (URLError is an OSError), or not Prometheus text
            self.unavailable[info.name] = f"{url} did not answer: {exc}"
            return {}
        self.unavailable.pop(info.name, None)
        now = time.monotonic()
        before = self._previous.get(info.name)
        self._previous[info.name] = (now, sample)
        return {d.name: self._stats(d.name, sample, before, now) for d in info.deployments}

    @staticmethod
    def _stats(name: str, sample: Sample, before: tuple[float, Sample] | None, now: float) -> LiveStats:
        requests = sample.requests.get(name, 0.0)
        buckets = sample.buckets.get(name, [])
        rate = None
        if before is not None and now > before[0]:
            earlier = before[1]
            new = requests - earlier.requests.get(name, 0.0)
            if new >= 0:  # a restarted router counts from zero again
                rate = new / (now - before[0])
                recent = _difference(buckets, earlier.buckets.get(name, []))
                if new > 0 and all(count >= 0 for _, count in recent):
                    buckets = recent
        p50, p99 = histogram_quantile(0.5, buckets), histogram_quantile(0.99, buckets)
        return LiveStats(
            deployment=name,
            requests=int(requests),
            errors=int(sample.errors.get(name, 0.0)),
            rate_per_s=rate,
            p50_ms=None if p50 is None else p50 * 1000,
            p99_ms=None if p99 is None else p99 * 1000,
        )
