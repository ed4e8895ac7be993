"""Supervision benchmark: how long a one-worker endpoint is out after its worker is killed with SIGKILL.

Run with ``.venv/bin/python bench/bench_supervision.py [--rounds N]``. A fresh workspace, one endpoint with one
worker serving a small ONNX model; each round kills the worker (``kill -9``) and times until ``/score`` answers
again, polling every 10 ms, with nobody calling ``list``/``show``: the endpoint's supervisor notices the death and
starts a new worker. Rounds are ``STABLE_S`` apart, so each killed worker had been up long enough not to count as
dying at start (no back-off). Target: the median outage under 2 s.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
logging.getLogger("mlflow").setLevel(logging.ERROR)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jupyter_mlops import Workspace  # noqa: E402
from jupyter_mlops.deploy.watch import STABLE_S  # noqa: E402

TARGET_S = 2.0
ROWS = [[0.0, 1.0], [1.0, 0.0]]


def _model(path: Path) -> Path:
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    X = np.array(ROWS, dtype=np.float32)
    path.write_bytes(to_onnx(LogisticRegression().fit(X, [0, 1]), X[:1], options={"zipmap": False}).SerializeToString())
    return path


def _answers(url: str) -> bool:
    request = urllib.request.Request(url, json.dumps({"inputs": ROWS}).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _gone(pid: int) -> bool:
    """No thread of the killed process holds a file any more (its socket is closed)."""
    try:
        return not any(any(task.joinpath("fd").iterdir()) for task in Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return not Path(f"/proc/{pid}/task").exists()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-supervision-") as tmp:
        ws = Workspace(Path(tmp) / "ws")
        ws.models.register(_model(Path(tmp) / "m.onnx"), "light")
        ep = ws.endpoints.create("outage", auth="none")
        try:
            ep.deploy("blue", "light:1")
            ep.set_traffic({"blue": 100})
            url = ws.endpoints._record("outage").url + "/score"
            outages = []
            for _ in range(args.rounds):
                time.sleep(STABLE_S + 0.5)  # the worker is long-lived, not one that died at start
                [worker] = ws.endpoints._workers("outage")
                os.kill(worker.pid, signal.SIGKILL)
                killed = time.monotonic()
                while not _gone(worker.pid):
                    time.sleep(0.005)
                while not _answers(url):
                    if time.monotonic() - killed > 60:
                        raise SystemExit("the endpoint did not answer within 60 s of the kill")
                    time.sleep(0.01)
                outages.append(time.monotonic() - killed)
            restarts = ws.endpoints.restarts("outage")
        finally:
            ws.endpoints.delete("outage")
    median = statistics.median(outages)
    print(f"{'figure':62} | {'ours':9} | result")
    print("-" * 100)
    figure = f"outage after kill -9 of a one-worker endpoint (median of {len(outages)})"
    print(f"{figure:62} | {median:7.2f} s | target < {TARGET_S:.0f} s: {'met' if median < TARGET_S else 'MISSED'}")
    print(f"rounds: {', '.join(f'{o:.2f}' for o in outages)} s; restarted by: {sorted({r.by for r in restarts})}")
    print(f"last reason: {restarts[-1].reason}")
    return 0 if median < TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
