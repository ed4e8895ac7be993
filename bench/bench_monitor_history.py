"""Monitor history benchmark: reading a long history back from the metadata store.

Run with ``.venv/bin/python bench/bench_monitor_history.py``. 1,000 runs of a monitor over 50 features (50,000
figures) are written into a real workspace's store, as the runs write them (one transaction per run); then
``ws.monitors.history(name)`` reads them into a DataFrame. Reference: under 200 ms (median of 5 reads). Also the
chart spec made from that history.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from jupyter_mlops import Workspace
from jupyter_mlops.monitoring import history
from jupyter_mlops.monitoring.charts import monitor_chart
from jupyter_mlops.store.monitors import MonitorRecord

RUNS, FEATURES, REFERENCE_MS = 1000, 50, 200.0


def fill(ws: Workspace) -> None:
    rng = np.random.default_rng(0)
    with ws.store.session() as session:  # a monitor row only: no endpoint is needed to read a history
        session.add(
            MonitorRecord(name="bench", endpoint="e", reference="r", features="[]", thresholds="{}", schedule_s=60)
        )
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for run in range(RUNS):
        scores = rng.random(FEATURES)
        figures = [
            history.figure("drift_score", s, feature=f"f{i}", threshold=0.1, alert=s >= 0.1)
            for i, s in enumerate(scores)
        ]
        with ws.store.session() as session:
            history.write(session, "bench", f"run{run:04d}", start + timedelta(minutes=15 * run), figures)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="mlops-bench-history-") as tmp:
        ws = Workspace(Path(tmp) / "ws")
        began = time.perf_counter()
        fill(ws)
        wrote = time.perf_counter() - began
        ws.monitors.history("bench")  # warm: the first query opens the connection
        reads = []
        for _ in range(5):
            began = time.perf_counter()
            frame = ws.monitors.history("bench")
            reads.append(time.perf_counter() - began)
        began = time.perf_counter()
        spec = monitor_chart(frame)
        chart_ms = (time.perf_counter() - began) * 1000
        size = len(json.dumps(spec))
        began = time.perf_counter()
        week = ws.monitors.history("bench", since=datetime(2026, 1, 8, tzinfo=timezone.utc), signal="drift_score")
        since_ms = (time.perf_counter() - began) * 1000
    read_ms = statistics.median(reads) * 1000
    print(f"history of {RUNS} runs x {FEATURES} features: {len(frame)} rows")
    print(f"  write, one transaction per run:  {wrote * 1000 / RUNS:8.2f} ms per run")
    print(f"  read (median of 5):              {read_ms:8.1f} ms   (reference: < {REFERENCE_MS:.0f} ms)")
    print(f"  read since= and signal=:         {since_ms:8.1f} ms   ({len(week)} rows)")
    print(f"  Vega-Lite spec of the history:   {chart_ms:8.1f} ms   ({size / 1e6:.1f} MB of JSON)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
