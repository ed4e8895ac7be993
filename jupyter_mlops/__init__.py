"""jupyter-mlops: the model lifecycle from inside a notebook.

    import jupyter_mlops as mlops
    with mlops.job(experiment="churn"):
        model = train(...)
        mlops.log_dataset(df, name="churn-train")
    version = mlops.register_model(model, "churn", tags={"stage": "candidate"})

Importing the package is cheap: MLflow and the other heavy libraries load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jupyter_mlops.exceptions import (
    BackendUnavailable,
    Conflict,
    FilterSyntaxError,
    InvalidInput,
    MlopsError,
    ModelInUseError,
    NotFound,
)
from jupyter_mlops.workspace import Workspace, default_workspace, use_workspace

if TYPE_CHECKING:
    from jupyter_mlops.jobs import Job, Runs
    from jupyter_mlops.records import ModelVersion
    from jupyter_mlops.registry import ModelRegistry

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailable",
    "Conflict",
    "FilterSyntaxError",
    "InvalidInput",
    "MlopsError",
    "ModelInUseError",
    "NotFound",
    "Workspace",
    "__version__",
    "default_workspace",
    "job",
    "load_ipython_extension",
    "log_dataset",
    "models",
    "register_model",
    "runs",
    "use_workspace",
]


def job(
    *,
    experiment: str | None = None,
    name: str | None = None,
    tags: dict[str, str] | None = None,
    notebook: str | None = None,
    autolog: bool = True,
) -> Job:
    """Run a block as a tracked MLflow run in the default workspace: ``with mlops.job(experiment="x"):``."""
    return default_workspace().job(experiment=experiment, name=name, tags=tags, notebook=notebook, autolog=autolog)


def log_dataset(df: Any, *, name: str, context: str = "training", source: str | None = None) -> str:
    """Record a DataFrame (with its digest) as an input of the running job; returns the digest."""
    from jupyter_mlops.jobs import log_dataset as _log_dataset

    return _log_dataset(df, name=name, context=context, source=source)


def register_model(
    source: Any, name: str, *, tags: dict[str, str] | None = None, description: str | None = None
) -> ModelVersion:
    """Register ``source`` (a model object, a runs:/ URI, a file or a folder) as the next version of ``name``."""
    return default_workspace().models.register(source, name, tags=tags, description=description)


def __getattr__(attr: str) -> ModelRegistry | Runs:
    # ``mlops.models`` and ``mlops.runs`` are the default workspace's services, resolved on first use.
    if attr == "models":
        return default_workspace().models
    if attr == "runs":
        return default_workspace().runs
    raise AttributeError(f"module 'jupyter_mlops' has no attribute {attr!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext jupyter_mlops``: registers ``%%mlops_job`` and ``%mlops`` (without importing MLflow)."""
    from jupyter_mlops.magics import MlopsMagics

    ipython.register_magics(MlopsMagics)
