"""Shadow comparison: each mirrored answer set beside the live answer of the same request, off the request path.

The request path only hands (the mirror deployment, the request, the live output) to a bounded queue; one worker
thread per process scores the mirrored request, compares the two answers and adds to plain counters in
``Metrics`` (so they are published with its snapshots and summed across worker processes at ``/metrics``). A full
queue drops the comparison and counts it: the live request never waits for the mirror.

What an answer is, is read from the outputs themselves (a ``{"predictions": ...}`` dict is unwrapped first, and a
list of rows is compared row by row):

- an int, a string or a bool is a **label** (a classifier): the two agree when they are equal;
- a float is a **number** (a regressor): the absolute difference is counted (its mean, and its p95 from a fixed
  histogram of absolute differences);
- a row that is a list of floats, or a dict of class -> float, is **probabilities** (a classifier): the label is
  the argmax and agreement is on it; the mean absolute difference of the probabilities is counted besides.

Rows whose kinds or shapes differ are counted as disagreeing labels (``mismatched``).
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import queue
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from jupyter_mlops.records import Record

if TYPE_CHECKING:
    from jupyter_mlops.deploy.app import Served
    from jupyter_mlops.deploy.metrics import Metrics
    from jupyter_mlops.deploy.protocols.wire import Translated

log = logging.getLogger("jupyter_mlops.shadow")
QUEUE_SIZE = 1024  # comparisons waiting for the worker; past it they are dropped (and counted)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# absolute differences: 0, then a 1-2.5-5 series from 1e-6 to 1e4 (p95 is read as its bucket's upper bound)
DIFF_BUCKETS = (0.0, *(m * 10.0**e for e in range(-6, 5) for m in (1.0, 2.5, 5.0)))
SUMMED = ("requests", "errors", "dropped", "labels", "agree", "mismatched", "probability_rows", "probability_diff")
SUMMED += ("numeric", "diff_sum", "latency_sum")
PREFIX = "mlops_shadow_"


def new_counts() -> dict[str, Any]:
    counts: dict[str, Any] = dict.fromkeys(SUMMED, 0)
    counts["diff_max"] = 0.0
    counts["diff_buckets"] = [0] * (len(DIFF_BUCKETS) + 1)
    counts["latency_buckets"] = [0] * (len(LATENCY_BUCKETS) + 1)
    return counts


def add_counts(into: dict[str, Any], other: dict[str, Any]) -> None:
    """Sum ``other`` (one worker's counts) into ``into``; the largest difference is the larger one."""
    for key in SUMMED:
        into[key] += other.get(key, 0)
    into["diff_max"] = max(into["diff_max"], other.get("diff_max", 0.0))
    for key in ("diff_buckets", "latency_buckets"):
        theirs = other.get(key) or [0] * len(into[key])
        into[key] = [a + b for a, b in zip(into[key], theirs, strict=True)]


# -- comparing two answers ----------------------------------------------------------------------------------------
@dataclass
class Comparison:
    """What comparing one mirrored answer with its live answer found."""

    labels: int = 0
    agree: int = 0
    mismatched: int = 0
    probability_rows: int = 0
    probability_diff: float = 0.0  # sum over rows of the mean absolute difference of the probabilities
    diffs: list[float] | None = None  # absolute differences of numeric rows


def _unwrap(output: Any) -> Any:
    if isinstance(output, dict) and "predictions" in output and len(output) <= 2:
        return output["predictions"]
    return output


def _rows(output: Any) -> list[Any]:
    """The rows of an answer: a list is one row per element (so a list of floats is numbers, one per row, and a
    list of lists of floats is probabilities, one list per row); anything else is one row."""
    output = _unwrap(output)
    return output if isinstance(output, list) else [output]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_probabilities(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and all(isinstance(v, float) for v in value)
    if isinstance(value, dict):
        return bool(value) and all(_is_number(v) for v in value.values())
    return False


def kind_of(value: Any) -> str:
    """``label``, ``numeric``, ``probabilities`` or ``other`` (see the module's docstring)."""
    if isinstance(value, (bool, str)) or (isinstance(value, int) and not isinstance(value, bool)):
        return "label"
    if isinstance(value, float):
        return "numeric"
    if _is_probabilities(value):
        return "probabilities"
    return "other"


def _argmax(value: list[float] | dict[str, float]) -> Any:
    if isinstance(value, dict):
        return max(value, key=lambda k: value[k])
    return max(range(len(value)), key=value.__getitem__)


def compare(live: Any, mirrored: Any) -> Comparison:
    """Compare two answers row by row."""
    found = Comparison(diffs=[])
    assert found.diffs is not None
    ours, theirs = _rows(live), _rows(mirrored)
    if len(ours) != len(theirs):
        found.labels = found.mismatched = max(len(ours), len(theirs))
        return found
    for a, b in zip(ours, theirs, strict=True):
        kind, other = kind_of(a), kind_of(b)
        if kind == "numeric" and other in ("numeric", "label") and _is_number(b):
            difference = abs(float(a) - float(b))
            found.diffs.append(difference if math.isfinite(difference) else math.inf)
        elif kind == "probabilities" and other == "probabilities" and type(a) is type(b) and len(a) == len(b):
            found.labels += 1
            found.agree += _argmax(a) == _argmax(b)
            pairs = zip(a, b, strict=True) if isinstance(a, list) else ((a[k], b.get(k, 0.0)) for k in a)
            found.probability_rows += 1
            found.probability_diff += sum(abs(float(x) - float(y)) for x, y in pairs) / len(a)
        elif kind == "label" and other == "label":
            found.labels += 1
            found.agree += a == b
        else:
            found.labels += 1
            found.mismatched += 1
    return found


def fold(counts: dict[str, Any], seconds: float, *, error: bool, found: Comparison | None) -> None:
    """Add one mirrored request (its latency, whether it failed, what comparing it found) to ``counts``."""
    counts["requests"] += 1
    counts["errors"] += error
    counts["latency_sum"] += seconds
    counts["latency_buckets"][bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
    if found is None:
        return
    for key in ("labels", "agree", "mismatched", "probability_rows", "probability_diff"):
        counts[key] += getattr(found, key)
    for difference in found.diffs or ():
        counts["numeric"] += 1
        counts["diff_sum"] += difference if math.isfinite(difference) else 0.0
        counts["diff_max"] = max(counts["diff_max"], difference if math.isfinite(difference) else 0.0)
        counts["diff_buckets"][bisect.bisect_left(DIFF_BUCKETS, difference)] += 1


# -- the worker ---------------------------------------------------------------------------------------------------
class Shadow:
    """The bounded queue of mirrored requests of one process and the one thread that scores and compares them."""

    def __init__(self, metrics: Metrics, size: int = QUEUE_SIZE) -> None:
        self.metrics = metrics
        self.collect: Any = None  # (deployment, body, output JSON) -> None, to collect the mirror's answers
        self._queue: queue.Queue[tuple[Served, Translated, Any]] = queue.Queue(maxsize=size)
        self._started = False
        self._lock = threading.Lock()

    def submit(self, served: Served, translated: Translated, live: Any) -> None:
        """Queue a mirrored request with the live answer (an object, or its JSON text); never blocks."""
        if not self._started:
            with self._lock:
                if not self._started:
                    threading.Thread(target=self._drain, name="mlops-shadow", daemon=True).start()
                    self._started = True
        try:
            self._queue.put_nowait((served, translated, live))
        except queue.Full:
            self.metrics.shadow_dropped(served.name)

    def _drain(self) -> None:
        while True:
            served, translated, live = self._queue.get()
            try:
                self.score(served, translated, live)
            except Exception:  # never let one request stop the comparisons
                log.exception("shadow comparison of %s failed", served.name)

    def score(self, served: Served, translated: Translated, live: Any) -> None:
        """Score the mirrored request, measure it, compare it with the live answer."""
        started = time.perf_counter()
        body = translated.body
        try:
            if served.upstream is not None:
                output = served.upstream.score_sync(body)
            else:
                assert served.scorer is not None
                output = served.scorer.score(body)
        except Exception:
            seconds = time.perf_counter() - started
            self.metrics.observe(served.name, seconds, error=True)
            self.metrics.observe_shadow(served.name, seconds, error=True, found=None)
            return
        seconds = time.perf_counter() - started
        self.metrics.observe(served.name, seconds, error=False)
        if isinstance(live, str):
            live = json.loads(live)
        self.metrics.observe_shadow(served.name, seconds, error=False, found=compare(live, output))
        if self.collect is not None and served.collect:
            self.collect(served.name, body, json.dumps(output))


# -- figures ------------------------------------------------------------------------------------------------------
def families(totals: dict[str, dict[str, Any]]) -> list[Any]:
    """The Prometheus families of the summed counts: counters, a latency and a difference histogram, and the
    ratios they make (so a dashboard reads them without arithmetic)."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

    def counter(name: str, help: str) -> CounterMetricFamily:
        return CounterMetricFamily(PREFIX + name, help, labels=["deployment"])

    def gauge(name: str, help: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(PREFIX + name, help, labels=["deployment"])

    made = {
        "requests": counter("requests", "Mirrored requests scored for comparison"),
        "errors": counter("errors", "Mirrored requests the mirror failed"),
        "dropped": counter("dropped", "Mirrored requests dropped: the comparison queue was full"),
        "labels": counter("label_comparisons", "Label rows compared (classifiers)"),
        "agree": counter("agreements", "Label rows on which the mirror agreed with live"),
        "mismatched": counter("mismatched", "Rows whose kind or shape differed between mirror and live"),
        "probability_rows": counter("probability_comparisons", "Probability rows compared"),
        "probability_diff": counter("probability_abs_diff", "Sum of the rows' mean absolute probability difference"),
    }
    ratios = {
        "agreement_ratio": gauge("agreement_ratio", "Share of label rows on which the mirror agreed"),
        "probability_abs_diff_mean": gauge("probability_abs_diff_mean", "Mean absolute probability difference"),
        "abs_diff_mean": gauge("abs_diff_mean", "Mean absolute difference of numeric outputs"),
        "abs_diff_p95": gauge("abs_diff_p95", "p95 of the absolute difference (a bucket's upper bound)"),
        "abs_diff_max": gauge("abs_diff_max", "Largest absolute difference of numeric outputs"),
        "error_ratio": gauge("error_ratio", "Share of mirrored requests the mirror failed"),
    }
    diff = HistogramMetricFamily(PREFIX + "abs_diff", "Absolute difference of numeric outputs", labels=["deployment"])
    latency = HistogramMetricFamily(PREFIX + "latency_seconds", "The mirror's scoring latency", labels=["deployment"])
    for name, counts in sorted(totals.items()):
        for key, family in made.items():
            family.add_metric([name], counts[key])
        figures = figures_of(counts)
        for key, family in ratios.items():
            if figures.get(key) is not None:
                family.add_metric([name], figures[key])
        diff.add_metric([name], _cumulative(DIFF_BUCKETS, counts["diff_buckets"]), counts["diff_sum"])
        latency.add_metric([name], _cumulative(LATENCY_BUCKETS, counts["latency_buckets"]), counts["latency_sum"])
    return [*made.values(), *ratios.values(), diff, latency]


def _cumulative(bounds: tuple[float, ...], buckets: list[int]) -> list[tuple[str, float]]:
    out, running = [], 0
    for bound, n in zip([*map(repr, bounds), "+Inf"], buckets, strict=True):
        running += n
        out.append((bound, running))
    return out


def quantile_upper(q: float, bounds: tuple[float, ...], buckets: list[float], top: float | None = None) -> float | None:
    """The upper bound of the bucket holding the q-th observation (at most ``top``, the largest seen): an upper
    estimate, exact when every difference is the same bucket bound, as a constant offset often is."""
    total = sum(buckets)
    if total <= 0:
        return None
    rank, running = q * total, 0.0
    for index, count in enumerate(buckets):
        running += count
        if running >= rank and count > 0:
            bound = bounds[index] if index < len(bounds) else math.inf
            return min(bound, top) if top is not None else bound
    return top


def figures_of(counts: dict[str, Any]) -> dict[str, Any]:
    """The figures of counts (summed, or the difference of two readings): rates, means, quantiles, the kind."""
    from jupyter_mlops.deploy.live import histogram_quantile

    requests, errors = counts["requests"], counts["errors"]
    labels, numeric = counts["labels"], counts["numeric"]
    latency = list(zip((*LATENCY_BUCKETS, math.inf), _running(counts["latency_buckets"]), strict=True))
    p50 = histogram_quantile(0.5, latency) if requests else None
    p99 = histogram_quantile(0.99, latency) if requests else None
    top = counts.get("diff_max") or None
    kind = "classifier" if labels >= numeric and labels else "regressor" if numeric else None
    return {
        "kind": kind,
        "requests": int(requests),
        "compared": int(requests - errors),
        "errors": int(errors),
        "dropped": int(counts["dropped"]),
        "error_rate": errors / requests if requests else None,
        "agreement_ratio": counts["agree"] / labels if labels else None,
        "mismatched": int(counts["mismatched"]),
        "probability_abs_diff_mean": (
            counts["probability_diff"] / counts["probability_rows"] if counts["probability_rows"] else None
        ),
        "abs_diff_mean": counts["diff_sum"] / numeric if numeric else None,
        "abs_diff_p95": quantile_upper(0.95, DIFF_BUCKETS, counts["diff_buckets"], top) if numeric else None,
        "abs_diff_max": top if numeric else None,
        "p50_ms": None if p50 is None else round(p50 * 1000, 3),
        "p99_ms": None if p99 is None else round(p99 * 1000, 3),
    }


def _running(buckets: list[float]) -> list[float]:
    out, running = [], 0.0
    for n in buckets:
        running += n
        out.append(running)
    return out


def parse_metrics(text: str) -> dict[str, dict[str, Any]]:
    """Per deployment, the counts back out of ``/metrics`` text (what ``families`` wrote)."""
    from prometheus_client.parser import text_string_to_metric_families

    names = {"requests": "requests", "errors": "errors", "dropped": "dropped", "label_comparisons": "labels"}
    names |= {"agreements": "agree", "mismatched": "mismatched", "probability_comparisons": "probability_rows"}
    names |= {"probability_abs_diff": "probability_diff"}
    found: dict[str, dict[str, Any]] = {}
    bucketed: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for family in text_string_to_metric_families(text):
        if not family.name.startswith(PREFIX):
            continue
        for s in family.samples:
            deployment = s.labels.get("deployment")
            if deployment is None:
                continue
            counts = found.setdefault(deployment, new_counts())
            short = s.name[len(PREFIX) :]
            if short.endswith("_total") and short[: -len("_total")] in names:
                counts[names[short[: -len("_total")]]] = s.value
            elif short == "abs_diff_max":
                counts["diff_max"] = s.value
            elif short == "abs_diff_sum":
                counts["diff_sum"] = s.value
            elif short == "abs_diff_count":
                counts["numeric"] = s.value
            elif short == "latency_seconds_sum":
                counts["latency_sum"] = s.value
            elif short in ("abs_diff_bucket", "latency_seconds_bucket"):
                bucketed.setdefault((deployment, short), []).append((float(s.labels["le"]), s.value))
    for (deployment, short), cumulative in bucketed.items():
        cumulative.sort()
        previous = [0.0, *(count for _, count in cumulative[:-1])]
        per_bucket = [count - before for (_, count), before in zip(cumulative, previous, strict=True)]
        key = "diff_buckets" if short == "abs_diff_bucket" else "latency_buckets"
        found[deployment][key] = per_bucket
    return found


def difference(now: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any] | None:
    """The counts between two readings of one deployment; None when they went back (a worker restarted). The
    largest difference is the later reading's (it is not windowed)."""
    if not before:
        return dict(now)
    out = dict(now)
    for key in SUMMED:
        out[key] = now[key] - before.get(key, 0)
        if out[key] < -1e-9:
            return None
    for key in ("diff_buckets", "latency_buckets"):
        out[key] = [a - b for a, b in zip(now[key], before.get(key) or [0] * len(now[key]), strict=True)]
        if any(v < 0 for v in out[key]):
            return None
    return out


@dataclass(frozen=True)
class ShadowReport(Record):
    """A mirror deployment's answers beside live ones, summed over every worker since they started: ``kind``
    classifier or regressor (read from the outputs), ``agreement_ratio`` (labels, or the argmax of probabilities),
    ``abs_diff_mean``/``abs_diff_p95`` (numeric outputs; p95 as an upper bucket bound), and the mirror's own
    requests, errors and latency. ``dropped``: comparisons skipped because the queue was full."""

    endpoint: str
    deployment: str
    mirror_percent: int
    kind: str | None
    requests: int
    compared: int
    errors: int
    error_rate: float | None
    dropped: int
    agreement_ratio: float | None
    probability_abs_diff_mean: float | None
    abs_diff_mean: float | None
    abs_diff_p95: float | None
    abs_diff_max: float | None
    mismatched: int
    p50_ms: float | None
    p99_ms: float | None
    table_columns: ClassVar[tuple[str, ...]] = (
        "deployment",
        "kind",
        "requests",
        "errors",
        "agreement_ratio",
        "abs_diff_mean",
        "abs_diff_p95",
        "p99_ms",
    )


def read(metrics_url: str, timeout: float = 2.0) -> dict[str, dict[str, Any]]:
    """The shadow counts of every mirror deployment, from the endpoint's ``/metrics`` (summed over workers)."""
    import urllib.request

    with urllib.request.urlopen(metrics_url, timeout=timeout) as response:
        return parse_metrics(response.read().decode())


def report(info: Any, deployment: str) -> ShadowReport:
    """The shadow figures of ``deployment`` of the endpoint ``info`` (an ``EndpointInfo``), read from its
    ``/metrics``; refused when the deployment does not exist, or is not mirrored and never was compared."""
    from jupyter_mlops.deploy.live import metrics_url
    from jupyter_mlops.exceptions import Conflict, InvalidInput, NotFound

    names = [d.name for d in info.deployments]
    if deployment not in names:
        raise NotFound(f"No deployment {deployment!r} in {info.name}; deployments: {', '.join(names) or 'none'}.")
    url = metrics_url(info)
    if url is None:
        raise Conflict(f"Endpoint {info.name} is {info.status}: its figures cannot be read.")
    try:
        counts = read(url).get(deployment)
    except (OSError, ValueError) as exc:
        raise Conflict(f"Endpoint {info.name} did not answer {url}: {exc}") from None
    percent = int(info.mirror.get(deployment, 0))
    if counts is None and not percent:
        mirrored = ", ".join(f"{n} ({p}%)" for n, p in info.mirror.items()) or "none"
        raise InvalidInput(
            f"{deployment} of {info.name} receives no mirrored traffic, so nothing is compared; mirrored: "
            f"{mirrored}. Mirror it first: ep.set_mirror({{{deployment!r}: 20}})."
        )
    figures = figures_of(counts or new_counts())
    return ShadowReport(endpoint=info.name, deployment=deployment, mirror_percent=percent, **figures)
