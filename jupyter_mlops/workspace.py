"""Workspace: where runs, models, artifacts and metadata live, and the services that work on them.

Resolution order: explicit arguments, else ``MLOPS_WORKSPACE`` (a folder) or ``MLOPS_TRACKING_URI``, else
``./mlops-workspace/`` in the current folder (a notebook kernel's current folder is the notebook's). A local
workspace holds ``mlflow.db`` (MLflow tracking store and registry), ``artifacts/`` and ``mlops.db`` (the metadata
store); with a remote tracking URI the metadata store is ``MLOPS_METADATA_URI`` (the same database server) or a
SQLite file in the workspace folder.
"""

from __future__ import annotations

import os
import tempfile
import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops._filelock import MIGRATIONS, FileLock
from jupyter_mlops.exceptions import InvalidInput
from jupyter_mlops.layout import Layout

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from jupyter_mlops.audit import VersionAudit
    from jupyter_mlops.automations import Automations
    from jupyter_mlops.datasets import Datasets
    from jupyter_mlops.deploy.batch import BatchEndpoints
    from jupyter_mlops.deploy.endpoints import Endpoints
    from jupyter_mlops.environments.service import Environments
    from jupyter_mlops.events import Events
    from jupyter_mlops.explain import Explanation
    from jupyter_mlops.jobs import Job, Runs
    from jupyter_mlops.lineage import Node
    from jupyter_mlops.monitoring.monitors import Monitors
    from jupyter_mlops.pipelines.service import Pipelines
    from jupyter_mlops.registry import ModelRegistry
    from jupyter_mlops.release import Release
    from jupyter_mlops.rollouts import Rollouts
    from jupyter_mlops.store import MetadataStore

DEFAULT_FOLDER = "mlops-workspace"
DEFAULT_EXPERIMENT = "notebooks"


class Workspace:
    """Where things live. Build one per process (kernel, server, CLI call) and hand it to the faces."""

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        tracking_uri: str | None = None,
        metadata_uri: str | None = None,
    ) -> None:
        env_root = os.environ.get("MLOPS_WORKSPACE")
        env_tracking = os.environ.get("MLOPS_TRACKING_URI")
        if root is None and tracking_uri is None:
            root, tracking_uri = env_root, env_tracking
        self.root = Path(root or DEFAULT_FOLDER).expanduser().resolve()
        self._ensure_writable_folder(self.root)
        self.layout = Layout(self.root)
        self.artifact_root = self.layout.artifacts
        self.is_local = tracking_uri is None
        self.tracking_uri = tracking_uri or f"sqlite:///{self.layout.tracking_db}"
        self.metadata_uri = (
            metadata_uri or os.environ.get("MLOPS_METADATA_URI") or f"sqlite:///{self.layout.metadata_db}"
        )
        self._experiments: dict[str, str] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Workspace(root={str(self.root)!r}, tracking_uri={self.tracking_uri!r})"

    # -- backends ---------------------------------------------------------------------------------------------
    @cached_property
    def client(self) -> MlflowClient:
        """The explicit MLflow client (no fluent globals); a remote server is checked once, failing fast."""
        from jupyter_mlops import _mlflow

        _mlflow.check_server(self.tracking_uri)
        ready = self.layout.marker(".mlflow-store-ready")  # mlflow.db exists before MLflow has finished creating it
        if not self.is_local or ready.exists():
            return _mlflow.make_client(self.tracking_uri)
        # Creating the SQLite stores runs MLflow's migrations: only one process may do that at a time.
        with (
            MIGRATIONS,
            self._file_lock(".mlflow-store.lock"),
            _mlflow.translated_errors("opening the tracking store"),
            _mlflow.quiet("mlflow.store.db.utils", "alembic"),
        ):
            client = _create_tracking_store(self.tracking_uri)
            ready.touch()
        return client

    @cached_property
    def store(self) -> MetadataStore:
        from jupyter_mlops.store import MetadataStore

        return MetadataStore(self.metadata_uri, lock_dir=self.root)

    # -- services ---------------------------------------------------------------------------------------------
    @cached_property
    def models(self) -> ModelRegistry:
        from jupyter_mlops.registry import ModelRegistry

        return ModelRegistry(self)

    @cached_property
    def runs(self) -> Runs:
        from jupyter_mlops.jobs import Runs

        return Runs(self)

    @cached_property
    def endpoints(self) -> Endpoints:
        from jupyter_mlops.deploy.endpoints import Endpoints

        return Endpoints(self)

    @cached_property
    def batch(self) -> BatchEndpoints:
        from jupyter_mlops.deploy.batch import BatchEndpoints

        return BatchEndpoints(self)

    @cached_property
    def monitors(self) -> Monitors:
        from jupyter_mlops.monitoring.monitors import Monitors

        return Monitors(self)

    @cached_property
    def datasets(self) -> Datasets:
        from jupyter_mlops.datasets import Datasets

        return Datasets(self)

    @cached_property
    def events(self) -> Events:
        from jupyter_mlops.events import Events

        return Events(self)

    @cached_property
    def environments(self) -> Environments:
        from jupyter_mlops.environments.service import Environments

        return Environments(self)

    @cached_property
    def pipelines(self) -> Pipelines:
        from jupyter_mlops.pipelines.service import Pipelines

        return Pipelines(self)

    @cached_property
    def release(self) -> Release:
        from jupyter_mlops.release import Release

        return Release(self)

    @cached_property
    def automations(self) -> Automations:
        from jupyter_mlops.automations import Automations

        return Automations(self)

    @cached_property
    def rollouts(self) -> Rollouts:
        from jupyter_mlops.rollouts import Rollouts

        return Rollouts(self)

    # -- read models: views built from the stores on each call ---------------------------------------------------
    def audit(self, model: str) -> list[VersionAudit]:
        """For each version of ``model``: who registered it and why, from which run or pipeline, when it was
        deployed where and with what traffic, when it was last used and how often, archived or deleted."""
        from jupyter_mlops.audit import audit

        return audit(self, model)

    def lineage(self, entity: str, *, depth: int = 6) -> Node:
        """Where ``entity`` (``churn:3``, a run id, a file) came from and what used it."""
        from jupyter_mlops.lineage import lineage

        return lineage(self, entity, depth=depth)

    def explain(self, model: str, data: Any, *, y: Any = None, shap: bool | None = None) -> Explanation:
        """Which features the predictions of ``model`` depend on, stored with the version."""
        from jupyter_mlops.explain import explain

        return explain(self, model, data, y=y, shap=shap)

    def job(self, **kwargs: Any) -> Job:
        """A tracked run as a context manager; see :func:`jupyter_mlops.jobs.Job`."""
        from jupyter_mlops.jobs import Job

        return Job(self, **kwargs)

    # -- helpers ----------------------------------------------------------------------------------------------
    def experiment_id(self, name: str | None = None) -> str:
        """The id of experiment ``name`` (created with its artifacts inside the workspace when new)."""
        from jupyter_mlops import _mlflow

        name = name or DEFAULT_EXPERIMENT
        with self._lock:
            cached = self._experiments.get(name)
        if cached:
            return cached
        with _mlflow.translated_errors(f"experiment {name!r}"):
            experiment = self.client.get_experiment_by_name(name)
            if experiment is not None:
                experiment_id = experiment.experiment_id
            else:
                location = (self.artifact_root / name).as_uri() if self.is_local else None
                try:
                    experiment_id = self.client.create_experiment(name, artifact_location=location)
                except Exception as exc:
                    if not _mlflow.is_already_exists(exc):
                        raise
                    experiment_id = self.client.get_experiment_by_name(name).experiment_id
        with self._lock:
            self._experiments[name] = experiment_id
        return experiment_id

    def _file_lock(self, name: str) -> FileLock:
        return FileLock(self.layout.marker(name))

    @staticmethod
    def _ensure_writable_folder(root: Path) -> None:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidInput(
                f"Cannot create the workspace folder {root}: {exc.strerror}. "
                "Pass --workspace DIR (or set MLOPS_WORKSPACE) to a folder you can write to.",
                path=str(root),
            ) from exc
        try:  # a real write: permissions, read-only mounts and immutable folders all show up here
            with tempfile.TemporaryFile(dir=root):
                pass
        except OSError as exc:
            raise InvalidInput(
                f"The workspace folder {root} is not writable ({exc.strerror}). "
                "Pass --workspace DIR (or set MLOPS_WORKSPACE) to a folder you can write to.",
                path=str(root),
            ) from exc


_default: Workspace | None = None


def _create_tracking_store(uri: str, attempts: int = 6) -> MlflowClient:
    """A client on a new SQLite tracking store, its tables created. MLflow's migrations can meet a table another
    creator (in this process, outside our lock) has not finished: "no such table" then means "not yet", and a
    later attempt resumes from the revision the database records."""
    import time

    from jupyter_mlops import _mlflow

    for attempt in range(attempts):
        try:
            client = _mlflow.make_client(uri)
            client.search_experiments(max_results=1)
            client.search_registered_models(max_results=1)
            return client
        except Exception as exc:
            half_created = type(exc).__name__ == "NoSuchTableError" or "no such table" in str(exc).lower()
            if attempt == attempts - 1 or not half_created:
                raise
            time.sleep(0.25 * (attempt + 1))
    raise AssertionError("unreachable")


_default_lock = threading.Lock()


def default_workspace() -> Workspace:
    """The process-wide workspace the module-level verbs use (built on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Workspace()
        return _default


def use_workspace(
    root: str | os.PathLike[str] | None = None,
    *,
    tracking_uri: str | None = None,
    metadata_uri: str | None = None,
) -> Workspace:
    """Point the module-level verbs (and the magics) at another workspace; returns it."""
    global _default
    workspace = Workspace(root, tracking_uri=tracking_uri, metadata_uri=metadata_uri)
    with _default_lock:
        _default = workspace
    return workspace
