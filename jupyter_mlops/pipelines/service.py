"""``ws.pipelines``: the pipeline verbs bound to one workspace (the same as the module's, without ``workspace=``)."""

from __future__ import annotations

import builtins
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jupyter_mlops.pipelines.records import PipelineInfo, PipelineRun, PipelineRunInfo
    from jupyter_mlops.workspace import Workspace


class Pipelines:
    """Validate, run, resume, list, show and clone the notebook pipelines of one workspace; reconcile dead runs."""

    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace

    def validate(self, spec_path: str | os.PathLike[str], *, parameters: dict[str, Any] | None = None) -> Any:
        from jupyter_mlops import pipelines

        return pipelines.validate(spec_path, parameters=parameters)

    def run(self, spec_path: str | os.PathLike[str], **options: Any) -> PipelineRun:
        """See :func:`jupyter_mlops.pipelines.run` for the options."""
        from jupyter_mlops.pipelines import run

        return run(spec_path, workspace=self.ws, **options)

    def resume(self, run_id: str, **options: Any) -> PipelineRun:
        from jupyter_mlops.pipelines import resume

        return resume(run_id, workspace=self.ws, **options)

    def list(self) -> builtins.list[PipelineInfo]:
        from jupyter_mlops.pipelines import list_pipelines

        return list_pipelines(workspace=self.ws)

    list_pipelines = list

    def show(self, name: str) -> PipelineInfo:
        from jupyter_mlops.pipelines import show

        return show(name, workspace=self.ws)

    def runs(self, name: str, *, max_results: int = 50) -> builtins.list[PipelineRunInfo]:
        from jupyter_mlops.pipelines import runs

        return runs(name, max_results=max_results, workspace=self.ws)

    def reconcile(self) -> builtins.list[str]:
        """Mark KILLED the runs whose runner process died (every verb does it first); returns their ids."""
        from jupyter_mlops.pipelines import history

        return history.reconcile_all(self.ws)

    def clone(self, name: str, new_name: str, dest: str | os.PathLike[str]) -> Path:
        from jupyter_mlops.pipelines import clone

        return clone(name, new_name, dest, workspace=self.ws)
