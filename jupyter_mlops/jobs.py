"""Tracked jobs: code run as an MLflow run that records what produced its results.

A job records the code (a cell's source, a copy of the notebook when it can be found), the environment (Python
version, the installed distributions and their content hash), the git commit, branch and uncommitted diff, the
user, autologged parameters and metrics, and the datasets passed to :func:`log_dataset`. An exception marks the
run FAILED, stores the traceback and propagates. Jobs nest.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import traceback
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from jupyter_mlops import _mlflow, snapshot
from jupyter_mlops.exceptions import InvalidInput
from jupyter_mlops.records import Run, from_millis, public_tags
from jupyter_mlops.registry import current_user
from jupyter_mlops.workspace import DEFAULT_EXPERIMENT

if TYPE_CHECKING:
    from jupyter_mlops.records import ModelVersion
    from jupyter_mlops.workspace import Workspace

ENV_HASH_TAG = "mlops.env_hash"
PYTHON_TAG = "mlops.python_version"
_current: contextvars.ContextVar[tuple[Job, ...]] = contextvars.ContextVar("mlops_jobs", default=())


def current_job() -> Job | None:
    """The innermost running job of this thread/task, if any."""
    stack = _current.get()
    return stack[-1] if stack else None


class Job:
    """A context manager that runs its block as an MLflow run (see the module docstring)."""

    def __init__(
        self,
        ws: Workspace,
        *,
        experiment: str | None = None,
        name: str | None = None,
        tags: dict[str, str] | None = None,
        source: str | None = None,
        notebook: str | os.PathLike[str] | None = None,
        autolog: bool = True,
    ) -> None:
        self.ws = ws
        self.experiment = experiment
        self.name = name
        self.tags = {str(k): str(v) for k, v in (tags or {}).items()}
        self.source = source
        self.notebook = Path(notebook) if notebook else _notebook_from_environment()
        self.autolog = autolog
        self.run_id = ""
        self.artifact_uri = ""
        self.status: str | None = None
        self._token: contextvars.Token[tuple[Job, ...]] | None = None
        self._exit_stack = contextlib.ExitStack()

    def __enter__(self) -> Job:
        client = self.ws.client
        parent = current_job()
        env = snapshot.environment()
        folder = self.notebook.parent if self.notebook else Path.cwd()
        git = snapshot.git_state(folder)
        tags = {
            "mlflow.user": current_user(),
            "mlflow.source.type": "NOTEBOOK" if self.notebook else "LOCAL",
            "mlflow.source.name": str(self.notebook) if self.notebook else "<cell>",
            ENV_HASH_TAG: env.content_hash,
            PYTHON_TAG: env.python_version,
            **self.tags,
        }
        if parent is not None:
            tags["mlflow.parentRunId"] = parent.run_id
        if git is not None:
            tags["mlflow.source.git.commit"] = git.commit
            if git.branch:
                tags["mlflow.source.git.branch"] = git.branch
            if git.remote:
                tags["mlflow.source.git.repoURL"] = git.remote
            tags["mlops.git_dirty"] = str(bool(git.diff)).lower()
        with _mlflow.translated_errors("starting a job"):
            run = client.create_run(self.ws.experiment_id(self.experiment), run_name=self.name, tags=tags)
            self.run_id, self.artifact_uri = run.info.run_id, run.info.artifact_uri
            self.name = run.info.run_name
            if self.source is not None:
                client.log_text(self.run_id, self.source, "code/cell.py")
            if self.notebook is not None and self.notebook.is_file():
                client.log_artifact(self.run_id, str(self.notebook), "code")
            client.log_text(self.run_id, env.requirements, "environment/requirements.txt")
            if git is not None and git.diff:
                client.log_text(self.run_id, git.diff, "code/uncommitted.diff")
            self._exit_stack.enter_context(_mlflow.autologging(self.autolog))
            _mlflow.activate_run(self.ws.tracking_uri, self.run_id)
        self._token = _current.set((*_current.get(), self))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None
        if exc_type is None:
            self.status = "FINISHED"
        elif issubclass(exc_type, KeyboardInterrupt):
            self.status = "KILLED"
        else:
            self.status = "FAILED"
        with _mlflow.translated_errors(f"ending job {self.run_id}"):
            if exc_type is not None:
                text = "".join(traceback.format_exception(exc_type, exc, tb))
                self.ws.client.log_text(self.run_id, text, "error/traceback.txt")
                self.ws.client.set_tag(self.run_id, "mlops.error", f"{exc_type.__name__}: {exc}"[:5000])
            _mlflow.deactivate_run(self.status)
        self._exit_stack.close()
        self._emit_outcome(exc)
        return False  # never swallow the exception

    def _emit_outcome(self, exc: BaseException | None) -> None:
        from jupyter_mlops.events import envelope

        experiment = self.experiment or DEFAULT_EXPERIMENT
        data = envelope.run_completed(
            self.ws.experiment_id(self.experiment),
            experiment,
            self.run_id,
            "job",
            self.tags,
            status=self.status,
        )
        data.update(run_id=self.run_id, name=self.name, experiment=experiment)  # the names the Lab sidebar reads
        if exc is not None:
            data["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        self.ws.events.emit("run.completed" if self.status == "FINISHED" else "run.failed", f"runs/{self.run_id}", data)

    def log_dataset(self, df: Any, *, name: str, context: str = "training", source: str | None = None) -> str:
        """Record a pandas DataFrame as an input of this run; returns its content digest."""
        if not hasattr(df, "columns") or not hasattr(df, "dtypes"):
            raise InvalidInput(f"log_dataset needs a pandas DataFrame, not {type(df).__name__}.")
        dataset, dataset_input = _mlflow.dataset_input(df, name, context, source)
        with _mlflow.translated_errors(f"logging dataset {name!r}"):
            self.ws.client.log_inputs(self.run_id, datasets=[dataset_input])
        return dataset.digest

    def register_model(self, source: Any, name: str, **kwargs: Any) -> ModelVersion:
        return self.ws.models.register(source, name, **kwargs)


def log_dataset(df: Any, *, name: str, context: str = "training", source: str | None = None) -> str:
    """Record ``df`` as an input of the running job (inside ``%%mlops_job`` or ``with mlops.job()``)."""
    job = current_job()
    if job is None:
        raise InvalidInput(
            "log_dataset needs a running job: call it inside a %%mlops_job cell or a `with mlops.job():` block."
        )
    return job.log_dataset(df, name=name, context=context, source=source)


class Runs:
    """Reading tracked runs back."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def list(self, experiment: str | None = None, *, max_results: int = 50) -> list[Run]:
        client = self.ws.client
        with _mlflow.translated_errors("listing runs"):
            if experiment is not None:
                found = client.get_experiment_by_name(experiment)
                if found is None:
                    names = sorted(e.name for e in client.search_experiments())
                    from jupyter_mlops.exceptions import NotFound

                    raise NotFound(
                        f"No experiment named {experiment!r}; experiments: {', '.join(names) or 'none'}.",
                        experiments=names,
                    )
                experiments = {found.experiment_id: found.name}
            else:
                experiments = {e.experiment_id: e.name for e in client.search_experiments()}
            runs = client.search_runs(
                list(experiments), max_results=max_results, order_by=["attributes.start_time DESC"]
            )
        return [_run_record(r, experiments.get(r.info.experiment_id, r.info.experiment_id)) for r in runs]

    def get(self, run_id: str) -> Run:
        client = self.ws.client
        with _mlflow.translated_errors(f"run {run_id!r}"):
            run = client.get_run(run_id)
            experiment = client.get_experiment(run.info.experiment_id).name
        return _run_record(run, experiment)


def _run_record(run: Any, experiment: str) -> Run:
    info, data = run.info, run.data
    start, end = from_millis(info.start_time), from_millis(info.end_time)
    duration = (info.end_time - info.start_time) / 1000 if info.end_time and info.start_time else None
    return Run(
        run_id=info.run_id,
        name=info.run_name,
        experiment=experiment,
        status=info.status,
        user=data.tags.get("mlflow.user") or info.user_id or None,
        start_time=start,
        end_time=end,
        duration_s=duration,
        params=dict(data.params),
        metrics=dict(data.metrics),
        tags=public_tags(data.tags),
        parent_run_id=data.tags.get("mlflow.parentRunId"),
        artifact_uri=info.artifact_uri,
    )


def _notebook_from_environment() -> Path | None:
    """The notebook a Jupyter server told the kernel about (``JPY_SESSION_NAME``), when it is a file."""
    name = os.environ.get("JPY_SESSION_NAME")
    if name and name.endswith(".ipynb"):
        path = Path(name)
        if path.is_file():
            return path.resolve()
    return None
