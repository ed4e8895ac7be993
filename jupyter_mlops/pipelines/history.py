"""Past pipeline runs: listing, showing, resuming and cloning, and reconciling runs whose runner died.

A runner killed with SIGKILL cannot mark its run; the run's tags say which process on which host ran it (a
``ProcessIdentity``), so whichever process looks next marks a RUNNING run whose process is gone as KILLED, with
its steps' states: every pipeline verb here (and ``run``) reconciles the whole workspace first, and the Jupyter
server calls :func:`reconcile_all` periodically. When nothing runs that costs two MLflow searches.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops import _mlflow
from jupyter_mlops.exceptions import Conflict, InvalidInput, MlopsError, NotFound
from jupyter_mlops.pipelines import tags as t
from jupyter_mlops.pipelines import tracking
from jupyter_mlops.pipelines.records import PipelineInfo, PipelineRunInfo
from jupyter_mlops.records import from_millis

if TYPE_CHECKING:
    from jupyter_mlops.pipelines.records import PipelineRun
    from jupyter_mlops.pipelines.runner import Progress
    from jupyter_mlops.workspace import Workspace

_KIND_FILTER = f"tags.`{t.KIND_TAG}` = '{t.PIPELINE_RUN_KIND}'"
_log = logging.getLogger(__name__)


def _experiments(ws: Workspace) -> dict[str, str]:
    """Pipeline experiments: id -> name."""
    found = ws.client.search_experiments(filter_string=f"tags.`{t.KIND_TAG}` = '{t.PIPELINE_KIND}'")
    return {e.experiment_id: e.name for e in found}


def _experiment(ws: Workspace, name: str, experiments: dict[str, str] | None = None) -> str:
    experiments = _experiments(ws) if experiments is None else experiments
    for experiment_id, experiment_name in experiments.items():
        if experiment_name == name:
            return experiment_id
    known = ", ".join(sorted(experiments.values())) or "none yet"
    raise NotFound(
        f"No pipeline named {name!r} has run in this workspace (pipelines: {known}); "
        "run one with: jupyter mlops pipeline run pipeline.yaml",
        pipelines=sorted(experiments.values()),
    )


def reconcile_all(ws: Workspace) -> list[str]:
    """Mark KILLED every pipeline run of the workspace whose runner process is gone; returns their ids.

    For a periodic task (the Jupyter server's) and every pipeline verb: one search for the pipeline experiments,
    one for their RUNNING runs, nothing more unless a run's runner died.
    """
    with _mlflow.translated_errors("reconciling pipeline runs"):
        return reconcile(ws, list(_experiments(ws)))


def reconcile_quietly(ws: Workspace, experiment_ids: list[str] | None = None) -> list[str]:
    """Reconcile as a side duty of another verb: a failure is logged, never the verb's own failure."""
    try:
        with _mlflow.translated_errors("reconciling pipeline runs"):
            return reconcile(ws, list(_experiments(ws)) if experiment_ids is None else experiment_ids)
    except MlopsError as exc:
        _log.warning("could not check for pipeline runs whose runner died: %s", exc)
        return []


def reconcile(ws: Workspace, experiment_ids: list[str]) -> list[str]:
    """Mark KILLED the RUNNING pipeline runs (their running steps and trials too) of these experiments whose
    runner process is gone, recording every step's state on the run; returns their ids."""
    if not experiment_ids:
        return []
    client = ws.client
    running = client.search_runs(
        experiment_ids, filter_string=f"{_KIND_FILTER} AND attributes.status = 'RUNNING'", max_results=5000
    )
    killed = []
    for run in running:
        if _alive(run.data.tags):
            continue
        steps = tracking.step_runs(client, run)
        trials = client.search_runs(  # the trials of sweep steps, one level further down
            [run.info.experiment_id],
            filter_string=f"tags.`{t.TRIAL_PIPELINE_RUN_TAG}` = '{run.info.run_id}' AND attributes.status = 'RUNNING'",
            max_results=5000,
        )
        for child in [*(s for s in steps if s.info.status == "RUNNING"), *trials]:
            client.set_tag(child.info.run_id, t.STATUS_TAG, "killed")
            _mlflow.terminate_run(client, child.info.run_id, "KILLED")
        # the states on the run itself: later reads need no search of its steps
        client.set_tag(run.info.run_id, t.STATES_TAG, json.dumps(tracking.step_states(run, steps, ended=True)))
        client.set_tag(run.info.run_id, t.ERROR_TAG, "the runner process ended without finishing the run")
        _mlflow.terminate_run(client, run.info.run_id, "KILLED")
        killed.append(run.info.run_id)
    return killed


def _alive(tags: Mapping[str, str]) -> bool:
    """Whether the run's runner process may still run: the same process (not a new one with its PID), or one
    this host cannot check (another host's, or a run that does not say)."""
    identity = tracking.runner_identity(tags)
    return identity is None or identity.alive()


def _runs(ws: Workspace, experiment_ids: list[str], max_results: int = 1000) -> list[Any]:
    return ws.client.search_runs(
        experiment_ids, filter_string=_KIND_FILTER, max_results=max_results, order_by=["attributes.start_time DESC"]
    )


def _reconciled_experiments(ws: Workspace) -> dict[str, str]:
    """The pipeline experiments, once the runs of dead runners in any of them are marked KILLED."""
    experiments = _experiments(ws)
    reconcile_quietly(ws, list(experiments))
    return experiments


def list_pipelines(ws: Workspace) -> list[PipelineInfo]:
    with _mlflow.translated_errors("listing pipelines"):
        experiments = _reconciled_experiments(ws)
        infos = []
        for experiment_id, name in sorted(experiments.items(), key=lambda e: e[1]):
            found = _runs(ws, [experiment_id])
            if found:
                infos.append(_info(ws, name, found[0], len(found)))
    return infos


def show(ws: Workspace, name: str) -> PipelineInfo:
    with _mlflow.translated_errors(f"pipeline {name!r}"):
        experiment_id = _experiment(ws, name, _reconciled_experiments(ws))
        found = _runs(ws, [experiment_id])
        if not found:
            raise NotFound(f"Pipeline {name!r} has no runs yet.")
        spec = _spec_text(ws, found[0].info.run_id)
        info = _info(ws, name, found[0], len(found))
    return dataclasses.replace(info, spec=spec)


def runs(ws: Workspace, name: str, *, max_results: int = 50) -> list[PipelineRunInfo]:
    with _mlflow.translated_errors(f"runs of pipeline {name!r}"):
        experiment_id = _experiment(ws, name, _reconciled_experiments(ws))
        found = _runs(ws, [experiment_id], max_results)
        return [_run_info(ws, name, run) for run in found]


def resume(
    ws: Workspace,
    run_id: str,
    *,
    max_parallel: int | None = None,
    progress: Progress | None = None,
    executor: str = "local",
    scheduler: str | None = None,
) -> PipelineRun:
    from jupyter_mlops.pipelines import spec
    from jupyter_mlops.pipelines.runner import Runner

    with _mlflow.translated_errors(f"pipeline run {run_id!r}"):
        run = ws.client.get_run(run_id)
        tags = run.data.tags
        if tags.get(t.KIND_TAG) != t.PIPELINE_RUN_KIND:
            raise InvalidInput(f"Run {run_id} is not a pipeline run: pass the RUN_ID that `pipeline run` printed.")
        reconcile_quietly(ws)
        run = ws.client.get_run(run_id)
        if run.info.status == "RUNNING":
            raise Conflict(
                f"Pipeline run {run_id} is still running (process {tags.get(t.PID_TAG)} on {tags.get(t.HOST_TAG)}); "
                "wait for it or stop it before resuming."
            )
        text = _spec_text(ws, run_id)
        parameters = json.loads(_artifact_text(ws, run_id, t.PARAMETERS_ARTIFACT))
    spec_path = Path(tags[t.SPEC_PATH_TAG])
    pipeline = spec.load(spec_path, text=text, folder=spec_path.parent, parameters=parameters)
    runner = Runner(
        ws,
        pipeline,
        max_parallel=max_parallel,
        progress=progress,
        resumed_from=run_id,
        executor=executor,
        scheduler=scheduler,
    )
    return runner.run()


def clone(ws: Workspace, name: str, new_name: str, dest: Path) -> Path:
    """Copy the latest spec of ``name`` and the notebooks it uses into ``dest`` as pipeline ``new_name``."""
    import yaml

    from jupyter_mlops.pipelines import spec

    if not re.match(spec.PIPELINE_NAME_PATTERN, new_name):
        raise InvalidInput(f"{new_name!r} is not a valid pipeline name (letters, digits, '.', '_', '-').")
    dest = dest.expanduser().resolve()
    if dest.exists() and any(dest.iterdir()):
        raise Conflict(f"{dest} is not empty: clone into a new folder so nothing is overwritten.", path=str(dest))
    with _mlflow.translated_errors(f"pipeline {name!r}"):
        latest = _runs(ws, [_experiment(ws, name, _reconciled_experiments(ws))], 1)[0]
        text = _spec_text(ws, latest.info.run_id)
    source_path = Path(latest.data.tags[t.SPEC_PATH_TAG])
    source = source_path.parent
    original = spec.load(source_path, text=text, folder=source)  # checks the notebooks are still there
    data = yaml.safe_load(text)
    data["name"] = new_name
    dest.mkdir(parents=True, exist_ok=True)
    for step_name, step in original.steps.items():
        raw = data["steps"][step_name]
        try:
            relative = step.notebook.relative_to(source)
        except ValueError:  # a notebook outside the pipeline's folder comes into the clone's notebooks/
            relative = Path("notebooks") / step.notebook.name
        (dest / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(step.notebook, dest / relative)
        raw["notebook"] = relative.as_posix()
        for key, ref in step.inputs.items():
            if ref.path is not None:  # data the clone reads stays where it is
                raw["inputs"][key] = str(ref.path)
        if step.environment is not None and "environment" in raw:
            raw["environment"] = str(step.environment)
    if data.get("environment"):
        data["environment"] = str((source / data["environment"]).resolve())
    target = dest / source_path.name
    target.write_text(
        f"# cloned from pipeline {name} version {original.version}\n" + yaml.safe_dump(data, sort_keys=False)
    )
    spec.load(target)
    return target


def _spec_text(ws: Workspace, run_id: str) -> str:
    return _artifact_text(ws, run_id, t.SPEC_ARTIFACT)


def _artifact_text(ws: Workspace, run_id: str, path: str) -> str:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mlops-spec-") as tmp:
        return Path(ws.client.download_artifacts(run_id, path, tmp)).read_text()


def _info(ws: Workspace, name: str, latest: Any, count: int) -> PipelineInfo:
    tags = latest.data.tags
    return PipelineInfo(
        name=name,
        version=tags.get(t.VERSION_TAG, ""),
        spec_path=tags.get(t.SPEC_PATH_TAG, ""),
        runs=count,
        last_status=tracking.run_status(latest),
        last_run_id=latest.info.run_id,
        last_run_at=from_millis(latest.info.start_time),
        steps=list(tracking.read_states(ws.client, latest)),
    )


def _run_info(ws: Workspace, name: str, run: Any) -> PipelineRunInfo:
    info, tags = run.info, run.data.tags
    return PipelineRunInfo(
        run_id=info.run_id,
        pipeline=name,
        version=tags.get(t.VERSION_TAG, ""),
        status=tracking.run_status(run),
        start_time=from_millis(info.start_time),
        duration_s=(info.end_time - info.start_time) / 1000 if info.end_time and info.start_time else None,
        steps=tracking.read_states(ws.client, run),
        resumed_from=tags.get(t.RESUMED_TAG),
    )
