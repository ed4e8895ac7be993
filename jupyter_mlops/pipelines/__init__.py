"""Notebook pipelines: ``pipeline.yaml`` names notebooks as steps; a run executes them with papermill.

    import jupyter_mlops as mlops
    result = mlops.pipelines.run("pipeline.yaml", parameters={"sample_frac": 0.5})
    result.status, result.steps["train"].status      # "FINISHED", "reused"

Each run is an MLflow run (in the experiment named after the pipeline) with one child run per step. A step whose
notebook, parameters, input contents and environment match an earlier successful run is reused, not executed.
The modules: ``spec`` (schema and checks), ``notebook`` (declared parameters), ``cache`` (step reuse),
``kernels`` (kernel start-up off the critical path), ``runner`` (scheduling the DAG), ``steps`` (what a step runs
with: kernel, inputs, cache key), ``tracking`` (the MLflow records of runs, steps and trials), ``tags`` (every tag
and artifact name they carry), ``sweeps`` (trials of a step's ``sweep:``), ``execution`` (one papermill
execution), ``executors`` (local or Dask), ``history`` (past runs, clones, reconciling dead runners),
``service`` (``ws.pipelines``). The notebook display is ``jupyter_mlops.widgets.progress``, the CLI group
``jupyter_mlops.cli.pipelines``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops.workspace import default_workspace

if TYPE_CHECKING:
    from jupyter_mlops.pipelines.records import PipelineInfo, PipelineRun, PipelineRunInfo
    from jupyter_mlops.pipelines.runner import Progress
    from jupyter_mlops.workspace import Workspace

__all__ = ["clone", "list_pipelines", "resume", "run", "runs", "show", "validate"]


def validate(spec_path: str | os.PathLike[str], *, parameters: dict[str, Any] | None = None) -> Any:
    """Check a spec (schema, references, cycles, notebooks' declared parameters) without running anything."""
    from jupyter_mlops.pipelines import spec

    return spec.load(Path(spec_path), parameters=parameters)


def run(
    spec_path: str | os.PathLike[str],
    *,
    parameters: dict[str, Any] | None = None,
    only: str | None = None,
    from_step: str | None = None,
    force: bool = False,
    max_parallel: int | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    workspace: Workspace | None = None,
    progress: Progress | None = None,
) -> PipelineRun:
    """Run a pipeline: reuse what has not changed, execute the rest, record everything as MLflow runs.

    ``only`` executes one step (its inputs from earlier runs), ``from_step`` one step and everything downstream,
    ``force`` executes every step. ``progress(step, state)`` is called on this thread at each state change.
    ``executor="dask", scheduler="tcp://HOST:PORT"`` runs the notebooks (steps and sweep trials) as tasks on that
    Dask cluster, whose workers see the project and the data at the same paths; the records stay written here.
    A failing step does not raise: the result's ``status`` is ``FAILED``. Ctrl-C marks the run KILLED and raises.
    """
    from jupyter_mlops.pipelines import spec
    from jupyter_mlops.pipelines.runner import Runner

    pipeline = spec.load(Path(spec_path), parameters=parameters)
    ws = workspace or default_workspace()
    runner = Runner(
        ws,
        pipeline,
        only=only,
        from_step=from_step,
        force=force,
        max_parallel=max_parallel,
        progress=progress,
        executor=executor,
        scheduler=scheduler,
    )
    return runner.run()


def resume(
    run_id: str,
    *,
    max_parallel: int | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    workspace: Workspace | None = None,
    progress: Progress | None = None,
) -> PipelineRun:
    """Run a failed or killed pipeline run again with its stored spec and parameters, reusing what succeeded."""
    from jupyter_mlops.pipelines import history

    return history.resume(
        workspace or default_workspace(),
        run_id,
        max_parallel=max_parallel,
        progress=progress,
        executor=executor,
        scheduler=scheduler,
    )


def list_pipelines(*, workspace: Workspace | None = None) -> list[PipelineInfo]:
    """Every pipeline that ran in the workspace, with its latest version and run."""
    from jupyter_mlops.pipelines import history

    return history.list_pipelines(workspace or default_workspace())


def show(name: str, *, workspace: Workspace | None = None) -> PipelineInfo:
    """A pipeline's latest version, with the spec text it ran."""
    from jupyter_mlops.pipelines import history

    return history.show(workspace or default_workspace(), name)


def runs(name: str, *, max_results: int = 50, workspace: Workspace | None = None) -> list[PipelineRunInfo]:
    """The runs of a pipeline, newest first."""
    from jupyter_mlops.pipelines import history

    return history.runs(workspace or default_workspace(), name, max_results=max_results)


def clone(name: str, new_name: str, dest: str | os.PathLike[str], *, workspace: Workspace | None = None) -> Path:
    """Copy a pipeline's latest spec and its notebooks into ``dest`` as pipeline ``new_name``; returns the spec."""
    from jupyter_mlops.pipelines import history

    return history.clone(workspace or default_workspace(), name, new_name, Path(dest))
