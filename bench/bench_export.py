"""Export benchmark: rows per second when `jupyter mlops export` writes a million collected requests as Parquet.

Run with ``.venv/bin/python bench/bench_export.py``. The requests are written in the collector's own format (one
JSON line per request, as an endpoint's collector writes them: time, deployment, request id, input, output) into
a fresh workspace; the figure is the export's rate against the target of at least 200,000 rows/s, beside the time
DuckDB alone takes to read the same lines (the floor).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jupyter_mlops import Workspace
from jupyter_mlops.export import export

ROWS = 1_000_000
TARGET = 200_000


def write_requests(ws: Workspace, rows: int) -> None:
    folder = ws.layout.collected("bench", "blue")
    folder.mkdir(parents=True, exist_ok=True)
    start = datetime.now(timezone.utc) - timedelta(seconds=rows // 1000)
    with open(folder / f"{start:%Y-%m-%d}.1.jsonl", "w", encoding="utf-8") as handle:
        for index in range(rows):
            moment = (start + timedelta(milliseconds=index)).isoformat()
            body = json.dumps({"dataframe_split": {"columns": ["a", "b", "c"], "data": [[index, 0.5, "x"]]}})
            handle.write(
                f'{{"time": "{moment}", "deployment": "blue", "request_id": "r{index}", '
                f'"input": {body}, "output": {{"predictions": [{index % 2}]}}}}\n'
            )


def main() -> int:
    import duckdb

    root = Path(tempfile.mkdtemp(prefix="mlops-bench-export-"))
    ws = Workspace(root / "ws")
    write_requests(ws, ROWS)
    files = [str(p) for p in ws.layout.collected("bench", "blue").glob("*.jsonl")]
    ws.models.list_models(), ws.endpoints.list()  # the stores' set-up and MLflow's import are not per row
    started = time.perf_counter()
    duckdb.connect().execute(f"SELECT count(*) FROM read_json({files!r}, format='newline_delimited')").fetchone()
    floor = time.perf_counter() - started
    done = export(ws, root / "bi", format="parquet")
    rate = done.rows["fact_requests"] / done.seconds
    ok = done.rows["fact_requests"] == ROWS and rate >= TARGET
    print(f"jupyter-mlops export benchmark  (python {sys.version.split()[0]}, {os.cpu_count()} cores)")
    print("figure                               jupyter-mlops        reference                      target")
    print(
        f"export of {ROWS:,} requests (parquet)  {rate:,.0f} rows/s  DuckDB reading them: {floor:.2f} s"
        f"    >= {TARGET:,} rows/s  {'ok' if ok else 'MISSED'}"
    )
    print(f"export took {done.seconds:.2f} s for {done.rows['fact_requests']:,} rows")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
