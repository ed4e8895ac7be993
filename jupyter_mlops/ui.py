"""``mlops.ui``: the notebook panels (every name of ``jupyter_mlops.widgets``) and the monitor chart.

``mlops.ui.monitor(name)`` displays the Vega-Lite chart the core makes from the monitor's history
(``monitoring/charts.py``), the same spec the Lab's panel draws.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jupyter_mlops import widgets as _widgets

if TYPE_CHECKING:
    from jupyter_mlops.monitoring.charts import MonitorChart
    from jupyter_mlops.workspace import Workspace


def monitor(name: str, *, workspace: Workspace | None = None, since: Any = None) -> MonitorChart:
    """The chart of monitor ``name``'s history (``since``: only the windows that ended then or later)."""
    from jupyter_mlops.monitoring.charts import MonitorChart
    from jupyter_mlops.workspace import default_workspace

    ws = workspace or default_workspace()
    return MonitorChart(name, ws.monitors.history(name, since=since))


# every panel of jupyter_mlops.widgets, as it lists them
globals().update({name: getattr(_widgets, name) for name in _widgets.__all__})
__all__ = [*_widgets.__all__, "monitor"]
