"""The one module that talks to MLflow: the explicit client, error translation, model flavours, autologging.

Everything else in jupyter-mlops goes through here, so that MLflow is imported only when it is needed and its
exceptions never reach a user untranslated.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops.exceptions import BackendUnavailable, Conflict, InvalidInput, MlopsError, NotFound

if TYPE_CHECKING:
    from mlflow import MlflowClient

SUPPORTED_MODEL_TYPES = (
    "a scikit-learn estimator",
    "an ONNX ModelProto",
    "an mlflow.pyfunc.PythonModel",
    "a 'runs:/<run_id>/<path>' or 'models:/<name>/<version>' URI",
    "a local file or folder path",
)
HOW_TO_START_A_SERVER = (
    "start one with: mlflow server --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000, "
    "or unset MLOPS_TRACKING_URI to use the local workspace store"
)
_autolog_lock = threading.Lock()
_autolog_enabled = False


@contextlib.contextmanager
def bulk_objects() -> Iterator[None]:
    """Build many small objects (MLflow entities, our records) without the cyclic garbage collector running over
    them again and again: they hold no cycles, and a 100k-version listing spends ~40 % of its time there."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _sqlite_cache(dbapi_connection: Any, _record: Any) -> None:
    """A larger page cache for SQLite stores: a registry of 100k versions outgrows SQLite's 2 MB default and its
    tag searches then read the disk again on every pass."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA cache_size=-65536")  # 64 MB, taken only as the database needs it
        cursor.close()


def make_client(tracking_uri: str, registry_uri: str | None = None) -> MlflowClient:
    from mlflow import MlflowClient
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if tracking_uri.startswith("sqlite") and not event.contains(Engine, "connect", _sqlite_cache):
        event.listen(Engine, "connect", _sqlite_cache)

    # MLflow draws a "Downloading artifacts" bar on every model load (each batch worker, each explain cell):
    # our own progress bars say what is going on. A user who sets the variable keeps their choice.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or tracking_uri)


def check_server(uri: str, timeout: float = 5.0) -> None:
    """Fail fast (MLflow's own client retries for minutes) when an HTTP tracking server does not answer."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as response:
            if response.status == 200:
                return
            reason = f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        reason = f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = str(getattr(exc, "reason", exc))
    raise BackendUnavailable(
        f"The MLflow tracking server at {uri} does not answer ({reason}); {HOW_TO_START_A_SERVER}.",
        uri=uri,
    )


@contextlib.contextmanager
def translated_errors(what: str = "") -> Iterator[None]:
    """Turn MLflow's exceptions into ours, keeping the original as the cause."""
    from mlflow.exceptions import MlflowException
    from requests.exceptions import ConnectionError as RequestsConnectionError

    try:
        yield
    except MlopsError:
        raise
    except MlflowException as exc:
        code = exc.error_code
        message = f"{what}: {exc.message}" if what else exc.message
        if code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
            raise NotFound(message) from exc
        if code in ("RESOURCE_ALREADY_EXISTS",):
            raise Conflict(message) from exc
        if code in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST", "INVALID_STATE"):
            raise InvalidInput(message) from exc
        if code in ("TEMPORARILY_UNAVAILABLE", "ENDPOINT_NOT_FOUND") or "Max retries" in exc.message:
            raise BackendUnavailable(message) from exc
        raise MlopsError(message) from exc
    except RequestsConnectionError as exc:
        raise BackendUnavailable(f"{what}: the tracking server does not answer ({exc})") from exc


def is_not_found(exc: BaseException) -> bool:
    from mlflow.exceptions import MlflowException

    if not isinstance(exc, MlflowException):
        return False
    # an unknown alias comes back as INVALID_PARAMETER_VALUE "... alias X not found"
    return exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or "not found" in exc.message.lower()


def is_already_exists(exc: BaseException) -> bool:
    from mlflow.exceptions import MlflowException

    return isinstance(exc, MlflowException) and exc.error_code == "RESOURCE_ALREADY_EXISTS"


def model_flavor(obj: Any) -> str | None:
    """The MLflow flavour that saves ``obj``, or None; decided without importing the frameworks."""
    module = type(obj).__module__ or ""
    if module.startswith("onnx") and type(obj).__name__ == "ModelProto":
        return "onnx"
    if module.startswith("sklearn") or (hasattr(obj, "fit") and hasattr(obj, "get_params")):
        return "sklearn"
    import mlflow.pyfunc

    if isinstance(obj, mlflow.pyfunc.PythonModel):
        return "pyfunc"
    return None


def save_model_object(obj: Any, path: Path) -> str:
    """Save an in-memory model as a standard MLflow model folder; return its flavour."""
    flavor = model_flavor(obj)
    if flavor == "sklearn":
        import mlflow.sklearn

        # cloudpickle: skops refuses common estimators (e.g. RandomForest) unless each type is trusted by hand.
        with quiet("mlflow.sklearn"):
            mlflow.sklearn.save_model(obj, str(path), serialization_format="cloudpickle")
    elif flavor == "onnx":
        import mlflow.onnx

        mlflow.onnx.save_model(obj, str(path))
    elif flavor == "pyfunc":
        import mlflow.pyfunc

        # MLflow warns that the object is cloudpickled (registering the object is the caller's choice) and that it
        # found no signature in type hints: advice about a choice already made, printed on every registration
        with quiet("mlflow.pyfunc", "mlflow.models"):
            mlflow.pyfunc.save_model(str(path), python_model=obj)
    else:
        raise InvalidInput(
            f"Cannot register an object of type {type(obj).__module__}.{type(obj).__qualname__}. "
            f"Supported sources: {'; '.join(SUPPORTED_MODEL_TYPES)}.",
            supported=list(SUPPORTED_MODEL_TYPES),
        )
    return flavor


@contextlib.contextmanager
def quiet(*loggers: str) -> Iterator[None]:
    """Silence some of MLflow's loggers for a block (set-up chatter, advice that does not apply to a choice made on
    purpose)."""
    import logging

    saved = [(logging.getLogger(name), logging.getLogger(name).level) for name in loggers]
    for log, _ in saved:
        log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for log, level in saved:
            log.setLevel(level)


def terminate_run(client: MlflowClient, run_id: str, status: str) -> None:
    """End a run without MLflow printing "View run ..." links to stdout (our faces print their own output)."""
    from mlflow.environment_variables import MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT

    name = MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT.name
    previous = os.environ.get(name)
    os.environ[name] = "true"
    try:
        client.set_terminated(run_id, status)
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def activate_run(tracking_uri: str, run_id: str) -> None:
    """Make ``run_id`` MLflow's active fluent run, so that autologging and ``mlflow.log_*`` calls land in it."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.start_run(run_id=run_id, nested=mlflow.active_run() is not None, log_system_metrics=False)


def deactivate_run(status: str) -> None:
    import mlflow

    mlflow.end_run(status=status)


def enable_autolog() -> None:
    """MLflow autologging for every installed framework, once per process (models are registered explicitly)."""
    global _autolog_enabled
    with _autolog_lock:
        if _autolog_enabled:
            return
        import mlflow

        mlflow.autolog(log_models=False, log_datasets=False, silent=True)
        # MLflow's sklearn autologging still calls log_loss(y_pred=...), which scikit-learn 1.9 renamed
        warnings.filterwarnings("ignore", message="`y_pred` was renamed to `y_proba`", category=FutureWarning)
        _autolog_enabled = True


def aliases_of(client: MlflowClient, names: set[str]) -> dict[tuple[str, int], list[str]]:
    """Aliases of the named models by (name, version).

    MLflow's version search leaves aliases out, and reading registered models computes every model's latest
    versions too; on a SQL store one query on MLflow's own alias table is all that is needed.
    """
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    result: dict[tuple[str, int], list[str]] = {}
    if not names:
        return result
    store = client._get_registry_client().store
    if isinstance(store, SqlAlchemyStore):
        from mlflow.store.model_registry.dbmodels.models import SqlRegisteredModelAlias as Alias

        with store.ManagedSessionMaker() as session:
            query = session.query(Alias.name, Alias.alias, Alias.version).filter(Alias.name.in_(sorted(names)))
            for name, alias, version in query:
                result.setdefault((name, int(version)), []).append(alias)
        return result
    for name in names:  # a remote server: the registered model carries its aliases
        for alias, version in (client.get_registered_model(name).aliases or {}).items():
            result.setdefault((name, int(version)), []).append(alias)
    return result


@contextlib.contextmanager
def autologging(enabled: bool) -> Iterator[None]:
    """Autologging on (enabled once per process) or, for this block only, off."""
    if enabled:
        enable_autolog()
        yield
        return
    if not _autolog_enabled:
        yield
        return
    from mlflow.utils.autologging_utils import disable_autologging

    with disable_autologging():
        yield


def dataset_input(df: Any, name: str, context: str, source: str | None):
    """An MLflow dataset input (with its content digest) for a pandas DataFrame."""
    import mlflow.data
    from mlflow.entities import DatasetInput, InputTag

    dataset = mlflow.data.from_pandas(df, name=name, source=source) if source else None
    if dataset is None:
        dataset = mlflow.data.from_pandas(df, name=name)
    return dataset, DatasetInput(
        dataset=dataset._to_mlflow_entity(),
        tags=[InputTag(key="mlflow.data.context", value=context)],
    )
