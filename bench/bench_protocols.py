"""Protocol benchmark: the same endpoint answering ``POST /v2/models/{name}/infer`` and ``POST /invocations`` beside
its own ``POST /score``.

Run with ``.venv/bin/python bench/bench_protocols.py`` (needs ``wrk``: ``apt-get install wrk``). The model is
bench_endpoints' ONNX forest (100 trees, depth 10, 20 features) on one endpoint with two worker processes;
single-row requests at concurrency 8. Each round measures the three routes back to back (this machine's speed
drifts); rates are medians over the rounds, and a route's ratio is the median of its ratios to ``/score`` in the
same round. Target: each protocol within 0.9x of ``/score``'s requests per second. Exits non-zero when a target
is missed.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_endpoints import WORKERS, wait_until_scores, wrk

from jupyter_mlops import Workspace

TARGET = 0.9
ROUNDS = 5  # each round measures the three routes back to back; the ratios are the medians of the rounds' ratios


def main() -> None:
    import shutil

    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    X, y = make_classification(n_samples=5000, n_features=20, random_state=0)
    X = X.astype(np.float32)
    forest = RandomForestClassifier(n_estimators=100, max_depth=10, random_state=0, n_jobs=1).fit(X, y)
    row = X[:1].tolist()
    bodies = {
        "/score": json.dumps({"inputs": row}),
        "/invocations": json.dumps({"inputs": row}),
        "/v2/models/bench/infer": json.dumps(
            {"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 20], "data": row[0]}]}
        ),
    }
    runs: dict[str, list[tuple[float, float]]] = {route: [] for route in bodies}
    with tempfile.TemporaryDirectory(prefix="mlops-bench-protocols-") as tmp:
        ws = Workspace(Path(tmp) / "ws")
        ws.models.register(to_onnx(forest, X[:1], options={"zipmap": False}), "forest")
        ep = ws.endpoints.create("bench", auth="none", instances=WORKERS)
        try:
            ep.deploy("blue", "forest:1")
            ep.set_traffic({"blue": 100})
            base = ep.scoring_uri.rsplit("/", 1)[0]
            for route, body in bodies.items():
                wait_until_scores(base + route, body, {})
            for _ in range(ROUNDS):
                for route, body in bodies.items():
                    runs[route].append(wrk(base + route, body, {}))
        finally:
            ep.delete()

    rate = {route: statistics.median(r for r, _ in results) for route, results in runs.items()}
    p99 = {route: statistics.median(p for _, p in results) for route, results in runs.items()}
    reference = rate["/score"]
    print(f"{'route (1 row, concurrency 8)':34} | {'ours':24} | {'reference':28} | result")
    print("-" * 120)
    missed = []
    for route in bodies:
        ours = f"{rate[route]:.0f} req/s, p99 {p99[route]:.1f} ms"
        if route == "/score":
            print(f"{route:34} | {ours:24} | {'(the reference)':28} |")
            continue
        ratio = statistics.median(mine[0] / score[0] for mine, score in zip(runs[route], runs["/score"], strict=True))
        verdict = "ok" if ratio >= TARGET else "MISSED"
        if ratio < TARGET:
            missed.append(route)
        result = f"{ratio:.2f}x (target >= {TARGET}x) {verdict}"
        print(f"{route:34} | {ours:24} | {f'/score {reference:.0f} req/s':28} | {result}")
    if missed:
        sys.exit(f"below {TARGET}x of /score: {', '.join(missed)}")


if __name__ == "__main__":
    main()
