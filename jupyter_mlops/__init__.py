"""jupyter-mlops: the model lifecycle from inside a notebook.

    import jupyter_mlops as mlops
    with mlops.job(experiment="churn"):
        model = train(...)
        mlops.log_dataset(df, name="churn-train")
    version = mlops.register_model(model, "churn", tags={"stage": "candidate"})

Importing the package is cheap: MLflow and the other heavy libraries load on first use.
"""

from __future__ import annotations

import sys
import types
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
    from jupyter_mlops.jobs import Job
    from jupyter_mlops.records import ModelVersion

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
    "audit",
    "automations",
    "batch",
    "compare",
    "convert_to_onnx",
    "datasets",
    "default_workspace",
    "drift",
    "endpoints",
    "environments",
    "evaluate",
    "events",
    "explain",
    "job",
    "lineage",
    "load_ipython_extension",
    "log_dataset",
    "models",
    "monitors",
    "package",
    "pipelines",
    "register_model",
    "runs",
    "ui",
    "use_workspace",
]


def job(
    *,
    experiment: str | None = None,
    name: str | None = None,
    tags: dict[str, str] | None = None,
    notebook: str | None = None,
    autolog: bool = True,
    workspace: Workspace | None = None,
) -> Job:
    """Run a block as a tracked MLflow run: ``with mlops.job(experiment="x"):``."""
    ws = workspace or default_workspace()
    return ws.job(experiment=experiment, name=name, tags=tags, notebook=notebook, autolog=autolog)


def log_dataset(df: Any, *, name: str, context: str = "training", source: str | None = None) -> str:
    """Record a DataFrame (with its digest) as an input of the running job (in its workspace); returns the digest."""
    from jupyter_mlops.jobs import log_dataset as _log_dataset

    return _log_dataset(df, name=name, context=context, source=source)


def register_model(
    source: Any,
    name: str,
    *,
    tags: dict[str, str] | None = None,
    description: str | None = None,
    sample: Any = None,
    workspace: Workspace | None = None,
) -> ModelVersion:
    """Register ``source`` (a model object, a runs:/ URI, a file or a folder) as the next version of ``name``;
    a scikit-learn model with a ``sample`` (rows like its training data) also gets its proven ONNX version."""
    ws = workspace or default_workspace()
    return ws.models.register(source, name, tags=tags, description=description, sample=sample)


def drift(reference: Any, current: Any, *, features: list[str] | None = None, drift_share: float = 0.5) -> Any:
    """Data drift of ``current`` against ``reference`` (DataFrames): ``.drifted``, ``.drift_share``, ``.features``,
    ``.save_html()``; shows evidently's report inline in a notebook. Needs no workspace."""
    from jupyter_mlops.monitoring.drift import drift as _drift

    return _drift(reference, current, features=features, drift_share=drift_share)


def _audit(model: str, *, workspace: Workspace | None = None) -> Any:
    """For each version of ``model``: who registered it and why, from which run or pipeline, when it was deployed
    where and with what traffic, when it was last used and how often, archived or deleted."""
    return (workspace or default_workspace()).audit(model)


def _explain(
    model: str, data: Any, *, y: Any = None, shap: bool | None = None, workspace: Workspace | None = None
) -> Any:
    """Which features the predictions of ``model`` (``NAME:VERSION``) depend on, stored with the version and drawn
    inline: permutation importance, and SHAP values when ``shap`` is installed (``shap=True`` requires them)."""
    return (workspace or default_workspace()).explain(model, data, y=y, shap=shap)


def _lineage(entity: str, *, depth: int = 6, workspace: Workspace | None = None) -> Any:
    """Where ``entity`` (``churn:3``, a run id, a file) came from and what used it; a tree in a terminal, a graph
    in a notebook, ``.to_dict()`` for scripts."""
    return (workspace or default_workspace()).lineage(entity, depth=depth)


def _evaluate(
    candidate: str,
    data: Any,
    *,
    baseline: str | None = "champion",
    targets: str = "label",
    thresholds: dict[str, Any] | None = None,
    model_type: str | None = None,
    evaluator_config: dict[str, Any] | None = None,
    workspace: Workspace | None = None,
) -> Any:
    """Gate ``candidate`` (``NAME:VERSION``): score it and ``baseline`` (the version holding that alias, a
    ``NAME:VERSION``, or None) on ``data`` with MLflow's default evaluator and compare them with MetricThreshold
    rules (None: ``{"accuracy_score": {"min_absolute_change": 0.0}}`` for a classifier). Records one MLflow run and
    tags the version with the verdict; returns ``.passed``, ``.metrics`` and ``.run_id``, drawn side by side."""
    return (workspace or default_workspace()).release.evaluate(
        candidate,
        data,
        baseline=baseline,
        targets=targets,
        thresholds=thresholds,
        model_type=model_type,
        evaluator_config=evaluator_config,
    )


def _compare(a: str, b: str, *, unchanged: bool = False, workspace: Workspace | None = None) -> Any:
    """What differs between two versions (``churn:3``, ``churn@champion``; ``b`` may be a bare number): parameters,
    metrics, training data (digests, profiles), packages, git commits and diff, and the training notebooks cell by
    cell; one report in a notebook, aligned text in a terminal, ``.to_dict()`` for scripts. ``unchanged=True``
    lists what is the same too."""
    return (workspace or default_workspace()).release.compare(a, b, unchanged=unchanged)


def convert_to_onnx(model: str, sample: Any, *, tolerance: float = 1e-4, workspace: Workspace | None = None) -> Any:
    """Convert ``NAME:VERSION`` to ONNX, prove parity on ``sample``, and register it as a new version."""
    from jupyter_mlops.deploy.onnx import convert_to_onnx as _convert

    return _convert(workspace or default_workspace(), model, sample, tolerance=tolerance)


def package(model: str, *, out: str, workspace: Workspace | None = None, **options: Any) -> Any:
    """Write a Docker build context for ``model`` into ``out``: Dockerfile, locked requirements, the model and the
    serving code; ``build=True`` builds the image, ``kserve=True`` writes a KServe InferenceService. Options:
    ``environment``, ``scoring_script``, ``build``, ``tag``, ``kserve``, ``endpoint`` (see ``deploy.package``)."""
    from jupyter_mlops.deploy.package import package as _package

    return _package(workspace or default_workspace(), model, out=out, **options)


# ``mlops.models`` (and every other service) is ``default_workspace().models``; ``mlops.audit``, ``mlops.explain`` and
# ``mlops.lineage`` are the verbs above. Several share their name with the module that implements them, and Python
# sets a submodule as an attribute of its package when it is first imported: the package's class keeps these names
# (a data descriptor wins over the module's own attributes), so ``mlops.datasets`` stays the service after
# ``jupyter_mlops.datasets`` was imported. The feature packages (environments, events, pipelines) are the packages
# themselves (and automations): their verbs run on the default workspace, or on ``workspace=``, as ``ws.X`` does.
_SERVICES = ("batch", "datasets", "endpoints", "models", "monitors", "runs")
_VERBS = {"audit": _audit, "compare": _compare, "evaluate": _evaluate, "explain": _explain, "lineage": _lineage}
_MODULES = {
    "automations": "jupyter_mlops.automations",
    "environments": "jupyter_mlops.environments",
    "events": "jupyter_mlops.events",
    "pipelines": "jupyter_mlops.pipelines",
    "ui": "jupyter_mlops.ui",
}


def _service(name: str) -> property:
    return property(lambda _: getattr(default_workspace(), name), lambda _, value: None, doc=f"``ws.{name}``")


def _verb(function: Any) -> property:
    function.__name__ = function.__qualname__ = function.__name__.lstrip("_")
    return property(lambda _: function, lambda _, value: None, doc=function.__doc__)


class _Package(types.ModuleType):
    locals().update({name: _service(name) for name in _SERVICES})
    locals().update({name: _verb(function) for name, function in _VERBS.items()})


sys.modules[__name__].__class__ = _Package


def __getattr__(attr: str) -> Any:
    if attr in _MODULES:
        import importlib

        return importlib.import_module(_MODULES[attr])
    raise AttributeError(f"module 'jupyter_mlops' has no attribute {attr!r}")


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """The jupyter_server extension (REST API for the Lab sidebar); imported only by a Jupyter server."""
    from jupyter_mlops.server.app import MlopsServerApp

    return [{"module": "jupyter_mlops.server.app", "app": MlopsServerApp}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The prebuilt JupyterLab extension shipped inside the package."""
    return [{"src": "labextension", "dest": "jupyter-mlops"}]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext jupyter_mlops``: registers ``%%mlops_job`` and ``%mlops`` (without importing MLflow)."""
    from jupyter_mlops.magics import MlopsMagics

    ipython.register_magics(MlopsMagics)
