"""The live figures of an endpoint over time, written by its supervisor: real workers, real HTTP, a real store.

The interval is shortened through the supervisor's environment; every wait is a bounded poll on the store.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

import jupyter_mlops as mlops
from jupyter_mlops import Workspace
from jupyter_mlops.deploy import series
from jupyter_mlops.deploy.metrics import BUCKETS
from jupyter_mlops.server.handlers import ROUTES  # the route table imports the handler modules
from jupyter_mlops.server.series_handlers import endpoint_history
from tests.tiny_model import ROWS, onnx_classifier
from tests.waiting import eventually, wait_gone


@pytest.fixture
def ws(tmp_path, monkeypatch) -> Iterator[Workspace]:
    monkeypatch.setenv(series.INTERVAL_ENV, "0.3")  # the supervisor inherits it
    workspace = Workspace(tmp_path / "ws")
    workspace.models.register(onnx_classifier(tmp_path / "m.onnx"), "light")
    yield workspace
    for info in workspace.endpoints.list():
        workspace.endpoints.delete(info.name)


def score(url: str, times: int) -> None:
    body = json.dumps({"inputs": ROWS}).encode()
    for _ in range(times):
        request = urllib.request.Request(url + "/score", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read()) == {"predictions": [0, 1]}


def served(ws: Workspace, name: str) -> int:
    return int(ws.endpoints.history(name)["requests"].sum())


def test_the_supervisor_keeps_each_deployments_figures_per_interval_across_a_worker_restart(ws, tmp_path):
    # Given an endpoint with blue at 100% and green mirrored at 0 (no traffic)
    ep = ws.endpoints.create("series", auth="none")
    ep.deploy("blue", "light:1")
    ep.set_traffic({"blue": 100})
    url = ep.scoring_uri.rsplit("/score", 1)[0]
    # When 30 requests are served
    score(url, 30)
    # Then the series holds them, once, with their latency and blue's share
    assert eventually(lambda: served(ws, "series") == 30, timeout=30), ws.endpoints.history("series")
    table = ws.endpoints.history("series")
    assert list(table.columns) == [*series.COLUMNS, "mirror"]
    busy = table[table["requests"] > 0]
    assert set(busy["deployment"]) == {"blue"} and set(busy["traffic"]) == {100}
    assert (busy["p50_ms"] > 0).all() and (busy["p99_ms"] >= busy["p50_ms"]).all()
    assert (table["errors"] == 0).all() and (table["error_rate"] == 0).all()
    assert table["time"].is_monotonic_increasing and str(table["time"].dt.tz) == "UTC"
    # When its worker is killed and comes back (new counters under a new process), and 20 more are served
    [worker] = ws.endpoints._workers("series")
    os.kill(worker.pid, signal.SIGKILL)
    wait_gone(worker.pid)
    assert eventually(lambda: [w.pid for w in ws.endpoints._workers("series")] not in ([], [worker.pid]), timeout=30)
    assert eventually(lambda: _ready(url), timeout=30)
    score(url, 20)
    # Then the series has the 50 served requests: nothing lost after the restart, nothing counted twice
    assert eventually(lambda: served(ws, "series") >= 50, timeout=30)
    later = datetime.now(timezone.utc)
    assert served(ws, "series") == 50
    # And since= reads only the newer points
    assert ws.endpoints.history("series", since=later + timedelta(hours=1)).empty
    assert ep.history().equals(ws.endpoints.history("series"))
    # And REST serves the same points with the dashboard chart drawn from them: one mark per point and chart
    served_over_rest = endpoint_history(ws, "series", None)
    assert len(served_over_rest.points) == len(ws.endpoints.history("series"))
    chart = served_over_rest.chart
    assert chart["$schema"].endswith("vega-lite/v5.json")
    assert len(chart["data"]["values"]) == len(served_over_rest.points)
    values = zip(chart["data"]["values"], served_over_rest.points, strict=True)
    assert sum(v["request_rate"] * p.interval_s for v, p in values) == pytest.approx(50)
    assert any(template == "endpoints/{name}/history" for template, _ in ROUTES)
    # And the notebook shows the same chart, with a summary where no chart renders
    shown = mlops.ui.endpoint_dashboard("series", workspace=ws)
    bundle = shown._repr_mimebundle_()
    assert bundle["application/vnd.vegalite.v5+json"]["vconcat"] == chart["vconcat"]
    assert "blue: 50 requests, 0 errors" in bundle["text/plain"] and "100% of traffic" in bundle["text/plain"]
    # And the BI export has them as a fact that joins its deployment, and adds only newer intervals next time
    import duckdb

    from jupyter_mlops.export import export

    first = export(ws, tmp_path / "bi", format="duckdb")
    db = duckdb.connect(str(tmp_path / "bi" / "mlops.duckdb"), read_only=True)
    joined = db.execute(
        "SELECT sum(f.requests), min(d.model_name), max(f.time) FROM fact_live_figures f "
        "JOIN dim_deployments d USING (endpoint, deployment)"
    ).fetchone()
    db.close()
    assert joined[:2] == (50, "light") and first.rows["fact_live_figures"] >= len(table)
    second = export(ws, tmp_path / "bi", format="duckdb")
    db = duckdb.connect(str(tmp_path / "bi" / "mlops.duckdb"), read_only=True)
    total, rows = db.execute("SELECT sum(requests), count(*) FROM fact_live_figures").fetchone()
    db.close()
    assert total == 50 and rows == first.rows["fact_live_figures"] + second.rows["fact_live_figures"]
    titles = [c["title"] for row in chart["vconcat"] for c in row["hconcat"]]
    assert titles == ["requests per second", "error rate", "latency (ms): p50 solid, p99 dashed", "traffic split (%)"]


def _ready(url: str) -> bool:
    """``/ready`` answers (it is not a scored request: the series does not count it)."""
    try:
        with urllib.request.urlopen(url + "/ready", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def test_quantiles_interpolate_inside_their_bucket_as_prometheus_does():
    buckets = [0] * (len(BUCKETS) + 1)
    assert series.quantile_ms(buckets, 0.5) is None
    buckets[BUCKETS.index(0.01)] = 10  # ten requests between 5 and 10 ms
    assert series.quantile_ms(buckets, 0.5) == pytest.approx(7.5)
    assert series.quantile_ms(buckets, 0.99) == pytest.approx(9.95)
    buckets[-1] = 90  # ninety above the largest bound: the quantile is that bound
    assert series.quantile_ms(buckets, 0.99) == BUCKETS[-1] * 1000


def test_a_worker_whose_counters_start_again_is_counted_from_zero():
    before = {"1.json": {"blue": [10, 1, 0.5, [10] + [0] * len(BUCKETS)]}}
    after = {
        "1.json": {"blue": [4, 0, 0.1, [4] + [0] * len(BUCKETS)]},  # the same file, counters went down: restarted
        "2.json": {"blue": [3, 0, 0.1, [3] + [0] * len(BUCKETS)]},
    }
    assert series.difference(before, after)["blue"][:2] == [7, 0]
