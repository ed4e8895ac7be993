"""The evidently report of a monitor run, as the HTML page its MLflow run keeps (``report/``)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from jupyter_mlops import _mlflow
from jupyter_mlops.exceptions import NotFound

if TYPE_CHECKING:
    from jupyter_mlops.workspace import Workspace

REPORT_ARTIFACT = "report/drift_report.html"


def last_report_html(ws: Workspace, monitor: str) -> str:
    """The HTML of the last report of ``monitor``; NotFound says why there is none yet."""
    found = ws.monitors.get(monitor)
    if found.last_run_id is None:
        raise NotFound(
            f"Monitor {monitor!r} has not run yet: run it now with `jupyter mlops monitor run {monitor}` "
            f"(or ws.monitors.run({monitor!r})), or wait for its schedule ({found.schedule_s} s).",
            monitor=monitor,
        )
    return report_html(ws, found.last_run_id, rows=(found.last_result or {}).get("rows"))


def run_report_html(ws: Workspace, monitor: str, run_id: str) -> str:
    """The HTML report of one run of ``monitor``; NotFound when the run is not one of the monitor's."""
    from jupyter_mlops.monitoring import history

    runs = history.read(ws, monitor, signal="rows")
    match = runs[runs["run_id"] == run_id]
    if match.empty:
        raise NotFound(
            f"Run {run_id!r} is not a run of monitor {monitor!r}: its runs are in ws.monitors.history({monitor!r}).",
            run_id=run_id,
        )
    return report_html(ws, run_id, rows=int(match["value"].iloc[0]))


def report_html(ws: Workspace, run_id: str, *, rows: int | None = None) -> str:
    """The HTML report of one monitor run (``rows``: how many the window had, for the message when it has none)."""
    with _mlflow.translated_errors(f"the drift report of run {run_id!r}"):
        names = {a.path for a in ws.client.list_artifacts(run_id, "report")}
        if REPORT_ARTIFACT not in names:
            had = f"{rows} collected row(s)" if rows is not None else "too few collected rows"
            raise NotFound(
                f"Monitor run {run_id} drew no report: its window had {had}, and a report needs at least 2. "
                "Send requests to the endpoint, then run the monitor again.",
                run_id=run_id,
            )
        with tempfile.TemporaryDirectory(prefix="mlops-report-") as tmp:
            return Path(ws.client.download_artifacts(run_id, REPORT_ARTIFACT, tmp)).read_text()
