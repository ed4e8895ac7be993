"""Shadow comparison benchmark: what mirroring with comparison and a watching rollout controller cost live traffic.

Run with ``.venv/bin/python bench/bench_shadow.py``. One endpoint serves a labeller as blue, with the same model
deployed as green. Rounds alternate in one run: *plain* (no mirror, no controller) and *shadow* (a rollout in its
shadow phase: 20 % of requests mirrored to green and compared with blue's answers off the request path, while the
rollout's controller process scrapes ``/metrics`` every 0.2 s). Each round sends single-row requests from
``CLIENTS`` keep-alive connections for ``ROUND_S`` seconds; the figures are the throughput and p99 over the shadow
rounds against the plain rounds', whose target is at least 0.9x the throughput (and p99 at most 1/0.9x).
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from urllib.parse import urlparse

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
logging.getLogger("mlflow").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*type hints to the `predict` method")

from jupyter_mlops import Workspace  # noqa: E402

ROUNDS = 3  # of each kind, alternating
ROUND_S = 6.0
CLIENTS = 4
MIRROR_PERCENT = 20
TARGET = 0.9


def _model() -> object:
    import mlflow.pyfunc

    class Label(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return [int(x) % 3 for x in model_input["x"]]

    return Label()


def _load(url: str, seconds: float) -> tuple[int, list[float]]:
    """(answered requests, latencies in s) of ``CLIENTS`` keep-alive clients for ``seconds``."""
    parsed = urlparse(url)
    body = json.dumps({"dataframe_records": [{"x": 7.0}]})
    latencies: list[list[float]] = [[] for _ in range(CLIENTS)]
    failures = [0]
    deadline = time.perf_counter() + seconds

    def client(mine: list[float]) -> None:
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            connection.request("POST", parsed.path, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                failures[0] += 1
            mine.append(time.perf_counter() - started)
        connection.close()

    threads = [threading.Thread(target=client, args=(mine,)) for mine in latencies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures[0]:
        raise SystemExit(f"{failures[0]} requests failed during the load")
    flat = [value for mine in latencies for value in mine]
    return len(flat), flat


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def _wait(check, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the endpoint")
        time.sleep(0.05)


def main() -> int:
    ws = Workspace(Path(tempfile.mkdtemp(prefix="mlops-bench-shadow-")) / "ws")
    ws.models.register(_model(), "label")
    ep = ws.endpoints.create("bench-shadow", auth="none")
    totals: dict[str, list[float]] = {"plain": [0.0, 0.0], "shadow": [0.0, 0.0]}  # requests, seconds
    latencies: dict[str, list[float]] = {"plain": [], "shadow": []}
    compared = 0
    try:
        ep.deploy("blue", "label:1")
        ep.deploy("green", "label:1")
        ep.set_traffic({"blue": 100})
        url = ws.endpoints._record(ep.name).url + "/score"
        _load(url, 1.0)  # warm-up
        for _ in range(ROUNDS):
            for kind in ("plain", "shadow"):
                if kind == "shadow":
                    ws.rollouts.start(
                        ep.name,
                        "green",
                        steps=[50, 100],
                        shadow="1h",
                        shadow_percent=MIRROR_PERCENT,
                        guards={"min_requests": 10**9},
                    )
                    _wait(lambda: (ws.rollouts.status(ep.name).figures or {}).get("phase") == "shadow")
                started = time.perf_counter()
                count, seen = _load(url, ROUND_S)
                totals[kind][0] += count
                totals[kind][1] += time.perf_counter() - started
                latencies[kind] += seen
                if kind == "shadow":
                    compared = max(compared, ep.shadow_report("green").compared)
                    ws.rollouts.abort(ep.name)
                    _wait(lambda: ep.info.mirror == {})
    finally:
        ep.delete()
    rate = {kind: requests / seconds for kind, (requests, seconds) in totals.items()}
    p99 = {kind: _p99(values) * 1000 for kind, values in latencies.items()}
    ratio, p99_ratio = rate["shadow"] / rate["plain"], p99["plain"] / p99["shadow"]
    ok = ratio >= TARGET and p99_ratio >= TARGET
    print(f"jupyter-mlops shadow benchmark  (python {sys.version.split()[0]}, {os.cpu_count()} cores)")
    print(f"{'figure':44} | {'with shadow':>12} | {'without':>12} | {'ratio':>6} | target")
    print("-" * 100)
    verdict = "ok" if ratio >= TARGET else "MISSED"
    print(
        f"{'throughput (requests/s)':44} | {rate['shadow']:>12.1f} | {rate['plain']:>12.1f} | {ratio:>6.2f}"
        f" | >= {TARGET}x  {verdict}"
    )
    verdict = "ok" if p99_ratio >= TARGET else "MISSED"
    print(
        f"{'p99 latency (ms)':44} | {p99['shadow']:>12.2f} | {p99['plain']:>12.2f} | {p99_ratio:>6.2f}"
        f" | <= 1/{TARGET}x  {verdict}"
    )
    print(
        f"  {ROUNDS} rounds of each, {ROUND_S:g} s, {CLIENTS} clients, {MIRROR_PERCENT}% mirrored; "
        f"mirrored answers compared over the shadow rounds: {compared}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
