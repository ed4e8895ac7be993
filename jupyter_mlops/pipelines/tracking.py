"""The MLflow records of a pipeline run: the parent run, a child run per step and a grandchild per sweep trial.

Every record is written from the runner's process, whichever executor ran the notebooks, and one call at a time:
the runner's threads share one client and (locally) one SQLite store. The scheduler decides *when* a run is
created or ended; this module decides *what* it carries. Tag names come from ``tags``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from jupyter_mlops import _mlflow, snapshot
from jupyter_mlops.pipelines import cache, sweeps
from jupyter_mlops.pipelines import notebook as notebooks
from jupyter_mlops.pipelines import tags as t
from jupyter_mlops.processes import ProcessIdentity
from jupyter_mlops.registry import current_user

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from jupyter_mlops.pipelines import execution
    from jupyter_mlops.pipelines.spec import Pipeline, Step, SweepSpec
    from jupyter_mlops.workspace import Workspace

_F = TypeVar("_F", bound=Callable[..., Any])
FINAL_STATES = ("succeeded", "reused", "failed", "skipped", "killed", "gated")  # the runner's final step states


def _serialized(method: _F) -> _F:
    """Run ``method`` holding the client lock, with MLflow's errors translated."""

    @functools.wraps(method)
    def one_at_a_time(self: Tracker, *args: Any, **kwargs: Any) -> Any:
        with self._lock, _mlflow.translated_errors(f"pipeline {self.pipeline.name}"):
            return method(self, *args, **kwargs)

    return cast(_F, one_at_a_time)


def run_status(run: Any) -> str:
    """A pipeline run's status: MLflow's, or GATED for a finished run that a step's gate stopped."""
    if run.info.status == "FINISHED" and t.GATED_TAG in run.data.tags:
        return "GATED"
    return run.info.status


def runner_identity(tags: Mapping[str, str]) -> ProcessIdentity | None:
    """The process that ran a pipeline run, from its tags; None when they name no host (this one cannot tell)."""
    host = tags.get(t.HOST_TAG)
    if not host:
        return None
    pid = tags.get(t.PID_TAG) or ""
    # an unreadable pid names no process: pid 0 is never alive, so the run counts as abandoned
    return ProcessIdentity(int(pid) if pid.isdigit() else 0, tags.get(t.PID_START_TAG) or "", host)


# -- reading a pipeline run's step states back ---------------------------------------------------------------------
def recorded_states(tags: Mapping[str, str]) -> dict[str, str] | None:
    """The step -> state map on a pipeline run (None when it has none, or not a readable one)."""
    with contextlib.suppress(ValueError, TypeError):
        states = json.loads(tags.get(t.STATES_TAG) or "null")
        if isinstance(states, dict):
            return {str(k): str(v) for k, v in states.items()}
    return None


def needs_step_runs(run: Any) -> bool:
    """Whether the run's own tag cannot tell its steps' states: it still runs, its runner was killed before it
    could write them, or it ended without them (a run reconciled by an older version)."""
    states = recorded_states(run.data.tags)
    return run.info.status == "RUNNING" or states is None or any(s not in FINAL_STATES for s in states.values())


def step_runs(client: MlflowClient, run: Any) -> list[Any]:
    """The step runs of a pipeline run (its children; sweep trials are one level further down)."""
    return client.search_runs(
        [run.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{run.info.run_id}' AND tags.`{t.KIND_TAG}` = '{t.STEP_RUN_KIND}'",
        max_results=5000,
    )


def step_states(run: Any, children: list[Any], *, ended: bool | None = None) -> dict[str, str]:
    """Each step's state, from the run's tag overlaid with what its step runs say.

    A step that ended keeps its state (succeeded, reused, failed); once the pipeline run itself has ended, a step
    that was running or still waiting is ``killed``. While the run goes on they show as ``running`` or ``pending``.
    """
    states = dict(recorded_states(run.data.tags) or {})
    for child in sorted(children, key=lambda c: c.info.start_time or 0):  # a retried step: its newest run
        name = child.data.tags.get(t.STEP_TAG)
        if name:
            states[name] = child.data.tags.get(t.STATUS_TAG) or "running"
    if ended is None:
        ended = run.info.status != "RUNNING"
    if ended:
        states = {name: state if state in FINAL_STATES else "killed" for name, state in states.items()}
    return states


def read_states(client: MlflowClient, run: Any) -> dict[str, str]:
    """The step states of a pipeline run, looking at its step runs only when its tag cannot tell."""
    if not needs_step_runs(run):
        return recorded_states(run.data.tags) or {}
    return step_states(run, step_runs(client, run))


class Tracker:
    """The records of one pipeline run (one Tracker per Runner)."""

    def __init__(self, ws: Workspace, pipeline: Pipeline, executor: str) -> None:
        self.ws = ws
        self.pipeline = pipeline
        self.executor = executor  # recorded on step and trial runs
        self.run_id = ""
        self.experiment_id = ""
        self._git: snapshot.GitState | None = None
        self._lock = threading.Lock()

    def call(self, func: Callable[..., Any], *args: Any) -> Any:
        """One MLflow call at a time: the runner's threads share one client and one SQLite store."""
        with self._lock, _mlflow.translated_errors(f"pipeline {self.pipeline.name}"):
            return func(*args)

    # -- the pipeline run ---------------------------------------------------------------------------------------
    def start_parent(
        self, options: dict[str, Any], resumed_from: str | None, env_hash: str, states: dict[str, str]
    ) -> None:
        """Create the pipeline's run, naming the process that runs it (so a later look can tell it died) and its
        steps' first states (so a run whose runner was killed outright still lists them)."""
        client = self.ws.client
        self._git = snapshot.git_state(self.pipeline.folder)
        identity = ProcessIdentity.current()
        with _mlflow.translated_errors(f"starting pipeline {self.pipeline.name}"):
            self.experiment_id = self.ws.experiment_id(self.pipeline.name)
            client.set_experiment_tag(self.experiment_id, t.KIND_TAG, t.PIPELINE_KIND)
            tags = {
                t.KIND_TAG: t.PIPELINE_RUN_KIND,
                t.PIPELINE_TAG: self.pipeline.name,
                t.VERSION_TAG: self.pipeline.version,
                t.SPEC_PATH_TAG: str(self.pipeline.path),
                t.PID_TAG: str(identity.pid),
                t.PID_START_TAG: identity.started,
                t.HOST_TAG: identity.host,
                "mlflow.user": current_user(),
                "mlflow.source.type": "PROJECT",
                "mlflow.source.name": str(self.pipeline.path),
                t.ENV_HASH_TAG: env_hash,
                t.STATES_TAG: json.dumps(states),
                **{f"{t.OPTION_TAG}{k}": str(v) for k, v in options.items() if v},
            }
            if resumed_from:
                tags[t.RESUMED_TAG] = resumed_from
            tags.update(self._git_tags())
            run = client.create_run(self.experiment_id, run_name=self.pipeline.name, tags=tags)
            self.run_id = run.info.run_id
            client.log_text(self.run_id, self.pipeline.text, t.SPEC_ARTIFACT)
            client.log_text(self.run_id, json.dumps(self.pipeline.parameters, default=str), t.PARAMETERS_ARTIFACT)
            for key, value in self.pipeline.parameters.items():
                client.log_param(self.run_id, key, str(value)[:6000])

    def _git_tags(self) -> dict[str, str]:
        if self._git is None:
            return {}
        return {"mlflow.source.git.commit": self._git.commit, t.GIT_DIRTY_TAG: str(bool(self._git.diff)).lower()}

    def finish_parent(self, states: dict[str, str], status: str, error: str | None) -> None:
        """End the pipeline's run; never raises, it runs while the run is already failing or interrupted."""
        with contextlib.suppress(Exception), self._lock:
            self.ws.client.set_tag(self.run_id, t.STATES_TAG, json.dumps(states))
            if status == "GATED":  # MLflow has no such status: a finished run, stopped by a gate
                self.ws.client.set_tag(self.run_id, t.GATED_TAG, (error or "")[:5000])
                status = "FINISHED"
            elif error:
                self.ws.client.set_tag(self.run_id, t.ERROR_TAG, error[:5000])
            _mlflow.terminate_run(self.ws.client, self.run_id, status)

    # -- step runs ------------------------------------------------------------------------------------------------
    @_serialized
    def create_step(
        self,
        step: Step,
        key: str,
        inputs: dict[str, tuple[Path, str]],
        extra: dict[str, str],
        status: str,
        env_hash: str,
        datasets: list[tuple[str, tuple[str, int]]],
    ) -> str:
        """A step's child run; ``datasets``: (input, (dataset, version)) for the registered datasets it reads."""
        tags = {
            "mlflow.parentRunId": self.run_id,
            "mlflow.user": current_user(),
            "mlflow.source.type": "NOTEBOOK",
            "mlflow.source.name": str(step.notebook),
            t.KIND_TAG: t.STEP_RUN_KIND,
            t.PIPELINE_TAG: self.pipeline.name,
            t.STEP_TAG: step.name,
            t.KEY_TAG: key,
            t.STATUS_TAG: status,
            t.ENV_HASH_TAG: env_hash,
            t.NOTEBOOK_HASH_TAG: notebooks.content_hash(step.notebook),
            **{f"{t.INPUT_TAG}{k}": h for k, (_, h) in inputs.items()},
            **{f"{t.INPUT_PATH_TAG}{k}": str(p) for k, (p, _) in inputs.items()},
            **{f"{t.OUTPUT_PATH_TAG}{k}": str(p) for k, p in step.outputs.items()},
            **self._git_tags(),
            **extra,
        }
        run = self.ws.client.create_run(self.experiment_id, run_name=step.name, tags=tags)
        for key_, value in step.parameters.items():
            self.ws.client.log_param(run.info.run_id, key_, str(value)[:6000])
        self._record_dataset_usage(run.info.run_id, datasets)
        return run.info.run_id

    def _record_dataset_usage(self, run_id: str, datasets: list[tuple[str, tuple[str, int]]]) -> None:
        """Dataset versions a step read, in the metadata store, so that lineage finds the runs that used them."""
        if datasets:  # the metadata store is opened (and imported) only for a step that reads one
            from jupyter_mlops.store.datasets import DatasetUsageRecord

            with self.ws.store.session() as session:
                for key, (dataset, version) in datasets:
                    session.add(
                        DatasetUsageRecord(name=dataset, version=version, run_id=run_id, context=f"input:{key}")
                    )

    @_serialized
    def end_step(
        self, run_id: str, state: str, status: str, error: str | None = None, duration: float | None = None
    ) -> None:
        client = self.ws.client
        client.set_tag(run_id, t.STATUS_TAG, state)
        if error:
            client.set_tag(run_id, t.ERROR_TAG, error[:5000])
        if duration is not None:
            client.log_metric(run_id, "duration_s", duration)
        _mlflow.terminate_run(client, run_id, status)

    @_serialized
    def log_outcome(self, run_id: str | None, folder: str, outcome: execution.Outcome) -> None:
        """The executed notebook and logs (written where the notebook ran) as artifacts, and where it ran."""
        with tempfile.TemporaryDirectory(prefix="mlops-outcome-") as tmp:
            files = []
            for name, content in outcome.files.items():
                (Path(tmp) / name).write_bytes(content)
                files.append(Path(tmp) / name)
            for file in files:
                name = f"logs/{file.name}" if file.suffix == ".txt" else f"{folder}/{file.name}"
                self.ws.client.log_artifact(run_id, str(file), str(Path(name).parent))
        if self.executor != "local":
            self.ws.client.set_tag(run_id, t.WORKER_TAG, outcome.where)

    @_serialized
    def log_outputs(self, run_id: str | None, step: Step) -> None:
        """The step's outputs as artifacts with their content hashes: what a later run reuses."""
        client = self.ws.client
        for name, path in step.outputs.items():
            kind = "folder" if path.is_dir() else "file"
            client.set_tag(run_id, f"{t.OUTPUT_TAG}{name}", cache.content_hash(path))
            client.set_tag(run_id, f"{t.OUTPUT_KIND_TAG}{name}", kind)
            target = f"{t.OUTPUTS_ARTIFACT}/{name}"
            if kind == "folder":
                client.log_artifacts(run_id, str(path), target)
            else:
                client.log_artifact(run_id, str(path), target)

    def register(self, run_id: str, step: Step) -> str:
        """Register the step's output as a model version, and note the version (``NAME:VERSION``, returned) on
        the step's run."""
        register = step.register
        assert register is not None
        output = register.output or next(iter(step.outputs))
        # public tags (the registry hides mlops.*): where the version came from shows in every listing
        tags = {"pipeline": self.pipeline.name, "pipeline_run": self.run_id, "pipeline_step": step.name}
        tags.update(register.tags)
        uri = f"runs:/{run_id}/{t.OUTPUTS_ARTIFACT}/{output}"
        version = self.call(functools.partial(self.ws.models.register, uri, register.name, tags=tags))
        self.call(self.ws.client.set_tag, run_id, t.REGISTERED_TAG, f"{version.name}:{version.version}")
        return f"{version.name}:{version.version}"

    # -- reading back (reuse) -------------------------------------------------------------------------------------
    @_serialized
    def reusable(self, key: str) -> Any | None:
        """The newest successful run of a step with this cache key, or None."""
        return cache.find(self.ws.client, self.experiment_id, key)

    @_serialized
    def latest(self, step: str) -> Any | None:
        """The newest successful run of ``step`` whatever its key."""
        return cache.latest(self.ws.client, self.experiment_id, step)

    @_serialized
    def restore(self, run: Any, name: str, dest: Path) -> None:
        cache.restore(self.ws.client, run, name, dest)

    @_serialized
    def artifact_text(self, run_id: str, path: str) -> str:
        with tempfile.TemporaryDirectory(prefix="mlops-artifact-") as tmp, cache._no_progress_bar():
            return Path(self.ws.client.download_artifacts(run_id, path, tmp)).read_text()

    # -- sweep trials ---------------------------------------------------------------------------------------------
    @_serialized
    def create_trial(self, step: Step, step_run_id: str, trial: sweeps.Trial) -> str:
        """A trial's run, a child of the step's run that also names the pipeline run (for reconciling)."""
        tags = {
            "mlflow.parentRunId": step_run_id,
            "mlflow.user": current_user(),
            "mlflow.source.type": "NOTEBOOK",
            "mlflow.source.name": str(step.notebook),
            t.KIND_TAG: t.TRIAL_RUN_KIND,
            t.TRIAL_TAG: str(trial.trial),
            t.TRIAL_PIPELINE_RUN_TAG: self.run_id,
            t.PIPELINE_TAG: self.pipeline.name,
            t.EXECUTOR_TAG: self.executor,
        }
        run = self.ws.client.create_run(self.experiment_id, run_name=f"{step.name}-trial-{trial.trial}", tags=tags)
        for key, value in {**step.parameters, **trial.parameters}.items():
            self.ws.client.log_param(run.info.run_id, key, str(value)[:6000])
        return run.info.run_id

    @_serialized
    def end_trial(self, trial: sweeps.Trial, metrics: dict[str, float]) -> None:
        client = self.ws.client
        assert trial.run_id
        for key, value in metrics.items():
            client.log_metric(trial.run_id, key, value)
        if trial.error:
            client.set_tag(trial.run_id, t.ERROR_TAG, trial.error[:5000])
        status = {"succeeded": "FINISHED", "failed": "FAILED"}.get(trial.status, "KILLED")
        _mlflow.terminate_run(client, trial.run_id, status)

    @_serialized
    def log_trials(
        self, step_run_id: str, sweep: SweepSpec, trials: list[sweeps.Trial], winner: sweeps.Trial | None
    ) -> None:
        """The trials table on the step's run, with the winner's metric and parameters."""
        client = self.ws.client
        rows = json.dumps([trial.row() for trial in trials], indent=1, default=str)
        client.log_text(step_run_id, rows, t.TRIALS_ARTIFACT)
        client.log_text(step_run_id, sweeps.table_csv(sweep, trials), t.TRIALS_CSV_ARTIFACT)
        if winner is not None:
            assert winner.metric is not None
            client.log_metric(step_run_id, sweep.metric, winner.metric)
            client.set_tag(step_run_id, t.BEST_TRIAL_TAG, str(winner.trial))
            client.set_tag(step_run_id, t.BEST_RUN_TAG, winner.run_id or "")
            for key, value in winner.parameters.items():
                client.log_param(step_run_id, f"best.{key}", str(value)[:6000])
