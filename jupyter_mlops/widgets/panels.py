"""The ipywidgets panels; see the package docstring."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import ipywidgets as w

from jupyter_mlops.exceptions import MlopsError
from jupyter_mlops.render import Result
from jupyter_mlops.workspace import default_workspace

if TYPE_CHECKING:
    from jupyter_mlops.records import ModelVersion, Run
    from jupyter_mlops.workspace import Workspace

PAGE_SIZE = 50


def _error_html(message: str) -> str:
    return (
        '<div style="color: var(--jp-error-color1, #d32f2f); border-left: 3px solid currentColor; '
        f'padding: 4px 8px; white-space: pre-wrap">{html.escape(message)}</div>'
    )


class ModelsPanel(w.VBox):
    """Model versions matching a ``TagName=TagValue`` filter, 50 a page; set an alias on a version."""

    def __init__(self, workspace: Workspace | None = None, *, filter: str | None = None) -> None:
        self.ws = workspace or default_workspace()
        self.versions: list[ModelVersion] = []
        self.page = 0
        self.filter = w.Text(value=filter or "", placeholder="stage=prod,team=risk", description="Filter")
        self.archived = w.Checkbox(value=False, description="archived", indent=False)
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.error = w.HTML()
        self.summary = w.HTML()
        self.table = w.HTML()
        self.prev_button = w.Button(description="Prev", icon="chevron-left", layout=w.Layout(width="80px"))
        self.next_button = w.Button(description="Next", icon="chevron-right", layout=w.Layout(width="80px"))
        self.alias_target = w.Text(placeholder="name:version", description="Version", layout=w.Layout(width="220px"))
        self.alias_name = w.Text(placeholder="champion", description="Alias", layout=w.Layout(width="200px"))
        self.alias_button = w.Button(description="Set alias")
        self.filter.on_submit(lambda _: self.refresh())
        self.archived.observe(lambda _: self.refresh(), names="value")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.prev_button.on_click(lambda _: self.show_page(self.page - 1))
        self.next_button.on_click(lambda _: self.show_page(self.page + 1))
        self.alias_button.on_click(lambda _: self.set_alias())
        super().__init__(
            [
                w.HBox([self.filter, self.archived, self.refresh_button]),
                self.error,
                self.summary,
                self.table,
                w.HBox([self.prev_button, self.next_button]),
                w.HBox([self.alias_target, self.alias_name, self.alias_button]),
            ]
        )
        self.refresh()

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.versions) // PAGE_SIZE))

    def refresh(self) -> None:
        try:
            self.versions = self.ws.models.list(self.filter.value or None, include_archived=self.archived.value)
            self.error.value = ""
        except MlopsError as exc:
            self.versions = []
            self.error.value = _error_html(exc.message)
        self.show_page(self.page)

    def show_page(self, page: int) -> None:
        self.page = min(max(0, page), self.pages - 1)
        shown = self.versions[self.page * PAGE_SIZE : (self.page + 1) * PAGE_SIZE]
        models = len({v.name for v in self.versions})
        self.summary.value = f"{len(self.versions)} version(s) of {models} model(s)" + (
            f" — page {self.page + 1} of {self.pages}" if self.pages > 1 else ""
        )
        self.table.value = Result(shown)._repr_html_() if shown else ""
        self.prev_button.disabled = self.page == 0
        self.next_button.disabled = self.page >= self.pages - 1

    def set_alias(self) -> None:
        from jupyter_mlops.refs import ModelRef

        try:
            ref = ModelRef.parse(self.alias_target.value)
            self.ws.models.set_alias(ref.name, self.alias_name.value.strip(), ref.selector)
        except MlopsError as exc:
            self.error.value = _error_html(exc.message)
            return
        self.refresh()


class RunsPanel(w.VBox):
    """Recent tracked runs (status, duration, metrics), optionally of one experiment."""

    def __init__(self, workspace: Workspace | None = None, *, experiment: str | None = None, max_results: int = 50):
        self.ws = workspace or default_workspace()
        self.max_results = max_results
        self.runs: list[Run] = []
        self.experiment = w.Dropdown(options=[("All experiments", "")], value="", description="Experiment")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.error = w.HTML()
        self.table = w.HTML()
        self._updating = False
        self.experiment.observe(self._on_experiment, names="value")
        self.refresh_button.on_click(lambda _: self.refresh())
        super().__init__([w.HBox([self.experiment, self.refresh_button]), self.error, self.table])
        if experiment:
            self.experiment.options = [("All experiments", ""), (experiment, experiment)]
            self.experiment.value = experiment  # refreshes
        else:
            self.refresh()

    def refresh(self) -> None:
        try:
            self.runs = self.ws.runs.list(self.experiment.value or None, max_results=self.max_results)
            self.error.value = ""
        except MlopsError as exc:
            self.runs = []
            self.error.value = _error_html(exc.message)
        known = {value for _, value in self.experiment.options} | {r.experiment for r in self.runs}
        options = [("All experiments", "")] + [(name, name) for name in sorted(known - {""})]
        if options != list(self.experiment.options):
            current, self._updating = self.experiment.value, True
            try:  # new options reset the value: put it back without refreshing again
                self.experiment.options = options
                self.experiment.value = current
            finally:
                self._updating = False
        self.table.value = Result(self.runs)._repr_html_() if self.runs else "<i>No runs.</i>"

    def _on_experiment(self, _change: object) -> None:
        if not self._updating:
            self.refresh()


def models(filter: str | None = None, *, workspace: Workspace | None = None) -> ModelsPanel:
    """The model versions of the workspace as a notebook panel: ``mlops.ui.models("stage=prod")``."""
    return ModelsPanel(workspace, filter=filter)


def runs(experiment: str | None = None, *, workspace: Workspace | None = None, max_results: int = 50) -> RunsPanel:
    """Recent runs as a notebook panel: ``mlops.ui.runs("churn")``."""
    return RunsPanel(workspace, experiment=experiment, max_results=max_results)
