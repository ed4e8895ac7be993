"""Deployment resources benchmark: does an endpoint deployment serve more requests per second with more cores?

Run with ``.venv/bin/python bench/bench_resources.py`` (needs ``wrk``: ``apt-get install wrk``). The model is
bench_endpoints' ONNX forest (100 trees, depth 10, 20 features), deployed in the endpoint's worker (one worker
process, so the deployment's ``resources`` are the only thing that changes) with ``resources={"cpu": 1}`` and then
``{"cpu": 2}``; requests of 1 row and of 100 rows at concurrency 8, one wrk run of each. In the endpoint's workers
``cpu`` sets onnxruntime's intra-op threads (``deploy/resources.py``); the reference is the ``cpu: 1`` deployment.

Target: 2 cores serve at least 1.5x the requests per second of 1 core. The figure is printed with ``MISSED`` when
it falls short, but the exit status stays 0: on a shared 2-core machine the load generator and the other tenants
take part of the second core, so the ratio says as much about the machine as about the deployment.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_endpoints import wait_until_scores, wrk

from jupyter_mlops import Workspace

TARGET = 1.5  # req/s with cpu 2 over req/s with cpu 1
ROWS = (1, 100)


def main() -> None:
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    X, y = make_classification(n_samples=5000, n_features=20, random_state=0)
    X = X.astype(np.float32)
    forest = RandomForestClassifier(n_estimators=100, max_depth=10, random_state=0, n_jobs=1).fit(X, y)
    bodies = {rows: json.dumps({"inputs": X[:rows].tolist()}) for rows in ROWS}
    rate: dict[tuple[int, int], tuple[float, float]] = {}
    applied: dict[int, str] = {}
    with tempfile.TemporaryDirectory(prefix="mlops-bench-resources-") as tmp:
        ws = Workspace(Path(tmp) / "ws")
        ws.models.register(to_onnx(forest, X[:1], options={"zipmap": False}), "forest")
        for cpu in (1, 2):
            ep = ws.endpoints.create(f"cpu{cpu}", auth="none", instances=1)
            try:
                info = ep.deploy("blue", "forest:1", resources={"cpu": cpu})
                applied[cpu] = info.limits or "(not reported)"
                ep.set_traffic({"blue": 100})
                for rows, body in bodies.items():
                    wait_until_scores(ep.scoring_uri, body, {})
                    rate[cpu, rows] = wrk(ep.scoring_uri, body, {})
            finally:
                ep.delete()

    cores = len(os.sched_getaffinity(0))
    print(f"machine: {cores} core(s); one endpoint worker process; concurrency 8; one run each")
    for cpu, text in applied.items():
        print(f"  cpu {cpu}: {text}")
    print(f"{'figure':30} | {'ours (cpu 2)':26} | {'reference (cpu 1)':26} | result")
    print("-" * 120)
    for rows in ROWS:
        (two, two_p99), (one, one_p99) = rate[2, rows], rate[1, rows]
        ratio = two / one
        verdict = "ok: scales with the cores" if ratio >= TARGET else "MISSED: does not scale with the cores"
        print(
            f"{f'{rows} row(s) per request':30} | {f'{two:.0f} req/s, p99 {two_p99:.1f} ms':26} | "
            f"{f'{one:.0f} req/s, p99 {one_p99:.1f} ms':26} | {ratio:.2f}x (target >= {TARGET}x) {verdict}"
        )


if __name__ == "__main__":
    main()
