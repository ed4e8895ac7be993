"""``mlops.ui.drift(result)``: a drift result in a notebook: the verdict, each feature's test, and the evidently
report on demand.

``result`` is what ``mlops.drift(reference, current)`` returns, a monitor run (``ws.monitors.run(name)``), or a
monitor's name (its last run). The report comes from the result itself or from the monitor run's MLflow artifacts
(:mod:`jupyter_mlops.monitoring.reports`).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from jupyter_mlops.exceptions import InvalidInput, MlopsError
from jupyter_mlops.monitoring.drift import DriftResult
from jupyter_mlops.monitoring.monitors import MonitorRun
from jupyter_mlops.widgets.panels import _error_html
from jupyter_mlops.workspace import default_workspace

if TYPE_CHECKING:
    from jupyter_mlops.workspace import Workspace


def _iframe(page: str) -> str:
    # srcdoc in a sandbox: the report's scripts draw the charts, and reach nothing of the notebook's page
    return (
        f'<iframe sandbox="allow-scripts" srcdoc="{html.escape(page)}" '
        'style="width: 100%; height: 720px; border: 0; background: white"></iframe>'
    )


class DriftPanel(w.VBox):
    """The verdict and per-feature table of a drift result; "Show report" draws the evidently report below."""

    def __init__(self, result: DriftResult | MonitorRun | str, workspace: Workspace | None = None) -> None:
        self.result = result
        self.ws = workspace
        self.summary = w.HTML(self._summary())
        self.table = w.HTML(self._features())
        self.error = w.HTML()
        self.report_button = w.Button(description="Show report", icon="bar-chart")
        self.report = w.HTML()
        self.report_button.on_click(lambda _: self.show_report())
        super().__init__([self.summary, self.table, self.error, self.report_button, self.report])

    @property
    def workspace(self) -> Workspace:
        self.ws = self.ws or default_workspace()
        return self.ws

    def show_report(self) -> None:
        try:
            self.report.value = _iframe(self._report_html())
            self.error.value = ""
        except MlopsError as exc:
            self.error.value = _error_html(exc.message)

    def _report_html(self) -> str:
        from jupyter_mlops.monitoring.reports import last_report_html, report_html

        if isinstance(self.result, DriftResult):
            return self.result.html()
        if isinstance(self.result, MonitorRun):
            if self.result.run_id is None:
                raise InvalidInput("This monitor run recorded nothing: it has no report.")
            return report_html(self.workspace, self.result.run_id, rows=self.result.rows)
        return last_report_html(self.workspace, self.result)

    def _facts(self) -> dict[str, Any]:
        """What the summary says, from whichever kind of result this is."""
        if isinstance(self.result, DriftResult):
            r = self.result
            return {"drifted": r.drifted, "share": r.drift_share, "rows": r.rows["current"], "alerts": []}
        if isinstance(self.result, MonitorRun):
            r = self.result
            return {"drifted": r.drifted or bool(r.alerts), "share": r.drift_share, "rows": r.rows, "alerts": r.alerts}
        last = self.workspace.monitors.get(self.result).last_result or {}
        return {
            "drifted": bool(last.get("drifted") or last.get("alerts")),
            "share": last.get("drift_share"),
            "rows": last.get("rows"),
            "alerts": last.get("alerts") or [],
        }

    def _summary(self) -> str:
        try:
            facts = self._facts()
        except MlopsError as exc:
            return _error_html(exc.message)
        if facts["share"] is None:
            verdict = f"not compared: {facts['rows'] or 0} row(s) in the window (a comparison needs 2)"
            color = "var(--jp-ui-font-color2, gray)"
        elif facts["drifted"]:
            verdict = f"drift detected: {facts['share']:.0%} of the features drifted"
            color = "var(--jp-warn-color1, darkorange)"
        else:
            verdict = f"no drift: {facts['share']:.0%} of the features drifted"
            color = "var(--jp-success-color1, green)"
        alerts = "".join(f"<li>{html.escape(a)}</li>" for a in facts["alerts"])
        rows = f" over {facts['rows']} current row(s)" if facts["rows"] is not None else ""
        return f'<b style="color: {color}">{html.escape(verdict)}</b>{rows}' + (f"<ul>{alerts}</ul>" if alerts else "")

    def _features(self) -> str:
        if not isinstance(self.result, DriftResult):
            return ""
        return self.result.features.to_html(index=False, float_format=lambda v: f"{v:.4g}")


def drift(result: DriftResult | MonitorRun | str, *, workspace: Workspace | None = None) -> DriftPanel:
    """A drift result as a notebook panel: ``mlops.ui.drift(mlops.drift(reference, current))``."""
    if not isinstance(result, (DriftResult, MonitorRun, str)):
        raise InvalidInput(
            "mlops.ui.drift shows what mlops.drift(...) or ws.monitors.run(name) returned, or a monitor's name; "
            f"got {type(result).__name__}."
        )
    return DriftPanel(result, workspace)
