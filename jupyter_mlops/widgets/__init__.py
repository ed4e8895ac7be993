"""Notebook panels (ipywidgets) over the core: ``mlops.ui.models()``, ``runs()``, ``endpoint(name)`` and
``drift(result)``.

They hold no logic of their own: each control calls one core function (``ws.models.list``, ``ws.models.set_alias``,
``ws.runs.list``, ``ws.endpoints.show``/``invoke``/``logs``, ``set_split``, the monitors' reports) and renders its
records with :mod:`jupyter_mlops.render`; errors show inline with their message. They work in any frontend that
renders ipywidgets (JupyterLab, Notebook 7, VS Code).
"""

from __future__ import annotations

from jupyter_mlops.widgets.drift import DriftPanel, drift
from jupyter_mlops.widgets.endpoint import EndpointPanel, endpoint
from jupyter_mlops.widgets.panels import ModelsPanel, RunsPanel, models, runs

__all__ = ["DriftPanel", "EndpointPanel", "ModelsPanel", "RunsPanel", "drift", "endpoint", "models", "runs"]
