"""Rollouts benchmark: from a guard trip to traffic back on the earlier deployment.

Run with ``.venv/bin/python bench/bench_rollouts.py``. An endpoint serves a doubler as blue; each round rolls out a
green that fails every request, with ``min_requests`` 5, under traffic from a background thread. The figure is the
time from the controller's decision (the guard tripped) to every worker serving blue's split again (the
``rollout.rolled_back`` event is emitted then), median of 5, against the target of under 1 s.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
logging.getLogger("mlflow").setLevel(logging.ERROR)

from jupyter_mlops import Workspace  # noqa: E402

ROUNDS = 5
TARGET_S = 1.0


def _models() -> tuple[object, object]:
    import mlflow.pyfunc

    class Doubler(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return (model_input["x"] * 2).tolist()

    class Broken(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            raise RuntimeError("always fails")

    return Doubler(), Broken()


def _traffic(url: str, stop: threading.Event) -> None:
    body = json.dumps({"dataframe_records": [{"x": 1.0}]}).encode()
    while not stop.is_set():
        request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                response.read()
        except (urllib.error.HTTPError, OSError):
            pass


def main() -> int:
    ws = Workspace(Path(tempfile.mkdtemp(prefix="mlops-bench-rollouts-")) / "ws")
    doubler, broken = _models()
    ws.models.register(doubler, "calc")
    ws.models.register(broken, "broken")
    ep = ws.endpoints.create("bench-rollout", auth="none")
    stop = threading.Event()
    delays: list[float] = []
    try:
        ep.deploy("blue", "calc:1")
        ep.deploy("green", "broken:1")
        ep.set_traffic({"blue": 100})
        url = ws.endpoints._record(ep.name).url + "/score"
        threading.Thread(target=_traffic, args=(url, stop), daemon=True).start()
        for _ in range(ROUNDS):
            started = ws.rollouts.start(ep.name, "green", steps=[50, 100], bake="1s", guards={"min_requests": 5})
            deadline = time.monotonic() + 120
            while ws.rollouts.status(ep.name).state not in ("rolled_back", "completed", "aborted"):
                if time.monotonic() > deadline:
                    raise SystemExit("the rollout did not end within 120 s")
                time.sleep(0.05)
            [event] = [
                e for e in ws.events.tail(types=["rollout.rolled_back"], limit=20) if e.data["rolloutId"] == started.id
            ]
            delays.append((event.time - datetime.fromisoformat(event.data["decidedAt"])).total_seconds())
            assert ep.info.traffic == {"blue": 100}
    finally:
        stop.set()
        ep.delete()
    median = statistics.median(delays)
    ok = median < TARGET_S
    print(f"jupyter-mlops rollouts benchmark  (python {sys.version.split()[0]}, {os.cpu_count()} cores)")
    print("figure                                        jupyter-mlops  target")
    verdict = "ok" if ok else "MISSED"
    print(f"guard trip -> traffic back on blue (median)   {median:>10.3f} s  < {TARGET_S:g} s  {verdict}")
    print(f"  rounds: {', '.join(f'{d:.3f}' for d in delays)} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
