"""``mlops.ui``: the notebook panels (every name of ``jupyter_mlops.widgets``) and the monitor chart.

``mlops.ui.monitor(name)`` and ``mlops.ui.endpoint_dashboard(name)`` display the Vega-Lite charts the core makes
from a monitor's history (``monitoring/charts.py``) and an endpoint's live figures (``deploy/dashboard.py``), the
same specs the Lab draws.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jupyter_mlops import widgets as _widgets

if TYPE_CHECKING:
    from jupyter_mlops.deploy.dashboard import EndpointChart
    from jupyter_mlops.monitoring.charts import MonitorChart
    from jupyter_mlops.workspace import Workspace


def monitor(name: str, *, workspace: Workspace | None = None, since: Any = None) -> MonitorChart:
    """The chart of monitor ``name``'s history (``since``: only the windows that ended then or later), with its
    endpoint's deployments and traffic changes marked."""
    from jupyter_mlops.monitoring.charts import MonitorChart
    from jupyter_mlops.monitoring.history import endpoint_changes
    from jupyter_mlops.workspace import default_workspace

    ws = workspace or default_workspace()
    history = ws.monitors.history(name, since=since)
    return MonitorChart(name, history, endpoint_changes(ws, ws.monitors.get(name).endpoint, since=since))


def endpoint_dashboard(name: str, *, workspace: Workspace | None = None, since: Any = None) -> EndpointChart:
    """The dashboard of endpoint ``name``: request rate, error rate, p50/p99 per deployment, the traffic split."""
    from jupyter_mlops.deploy.dashboard import EndpointChart
    from jupyter_mlops.workspace import default_workspace

    ws = workspace or default_workspace()
    return EndpointChart(name, ws.endpoints.history(name, since=since))


# every panel of jupyter_mlops.widgets, as it lists them
globals().update({name: getattr(_widgets, name) for name in _widgets.__all__})
__all__ = [*_widgets.__all__, "endpoint_dashboard", "monitor"]
