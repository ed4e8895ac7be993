"""Live figures of an endpoint from Prometheus text: parsing, quantiles, rates between two readings."""

from __future__ import annotations

from datetime import datetime

import pytest

from jupyter_mlops.deploy import live
from jupyter_mlops.deploy.endpoints import DeploymentInfo, EndpointInfo


def metrics(blue: int, slow: int = 0) -> str:
    """/metrics as the router writes it: ``blue`` requests at 2 ms, ``slow`` more at 40 ms."""
    total = blue + slow
    buckets = [(0.001, 0), (0.0025, blue), (0.025, blue), (0.05, total), ("+Inf", total)]
    lines = ["# TYPE mlops_requests_total counter", f'mlops_requests_total{{deployment="blue"}} {total}.0']
    lines += ["# TYPE mlops_errors_total counter", 'mlops_errors_total{deployment="blue"} 1.0']
    lines += ["# TYPE mlops_request_latency_seconds histogram"]
    lines += [f'mlops_request_latency_seconds_bucket{{deployment="blue",le="{le}"}} {n}.0' for le, n in buckets]
    lines += [f'mlops_request_latency_seconds_count{{deployment="blue"}} {total}.0']
    return "\n".join(lines) + "\n"


def endpoint() -> EndpointInfo:
    blue = DeploymentInfo(
        endpoint="api",
        name="blue",
        model="clf:1",
        status="active",
        traffic=100,
        mirror=0,
        error=None,
        created_at=datetime(2026, 1, 1),
    )
    return EndpointInfo(
        name="api",
        status="running",
        scoring_uri="http://127.0.0.1:1/score",
        auth="none",
        pid=1,
        traffic={"blue": 100},
        mirror={},
        deployments=[blue],
    )


def test_parse_and_quantiles():
    sample = live.parse_metrics(metrics(blue=100))
    assert sample.requests == {"blue": 100} and sample.errors == {"blue": 1}
    assert sample.buckets["blue"][0] == (0.001, 0.0) and sample.buckets["blue"][-1][1] == 100
    # all 100 observations lie in (1 ms, 2.5 ms]: the median interpolates to its middle
    assert live.histogram_quantile(0.5, sample.buckets["blue"]) == pytest.approx(0.00175)
    assert live.histogram_quantile(0.99, []) is None
    assert live.histogram_quantile(0.5, [(0.1, 0.0), (float("inf"), 0.0)]) is None
    # the q-th observation above the last finite bound: that bound is the estimate
    assert live.histogram_quantile(0.99, [(0.1, 1.0), (float("inf"), 10.0)]) == 0.1


def test_rate_and_recent_latency_between_two_readings(monkeypatch):
    readings = iter([metrics(blue=100), metrics(blue=100, slow=50)])
    monkeypatch.setattr(live, "scrape", lambda url, timeout=live.SCRAPE_TIMEOUT_S: live.parse_metrics(next(readings)))
    clock = iter([10.0, 15.0])
    monkeypatch.setattr(live.time, "monotonic", lambda: next(clock))
    reader = live.LiveReader()
    first = reader.read(endpoint())["blue"]
    assert (first.requests, first.errors, first.rate_per_s) == (100, 1, None)
    assert first.p99_ms == pytest.approx(2.485)
    second = reader.read(endpoint())["blue"]
    assert second.requests == 150 and second.rate_per_s == pytest.approx(10.0)  # 50 requests in 5 s
    assert 25 < second.p50_ms <= 50  # the interval's 50 requests were the slow ones


def test_a_router_that_does_not_answer_gives_no_figures(monkeypatch):
    def refuse(url, timeout=live.SCRAPE_TIMEOUT_S):
        raise ConnectionRefusedError(url)

    monkeypatch.setattr(live, "scrape", refuse)
    assert live.LiveReader().read(endpoint()) == {}
    assert live.metrics_url(endpoint()) == "http://127.0.0.1:1/metrics"
