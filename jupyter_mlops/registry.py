"""The model registry, on MLflow's registry: register, find, tag, alias, archive, download, guarded delete."""

from __future__ import annotations

import contextlib
import difflib
import getpass
import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from jupyter_mlops import _mlflow
from jupyter_mlops.events import envelope
from jupyter_mlops.exceptions import Conflict, InvalidInput, ModelInUseError, NotFound
from jupyter_mlops.filters import to_mlflow_filter
from jupyter_mlops.model_files import check_source, upload_failure
from jupyter_mlops.names import check_name
from jupyter_mlops.records import ModelVersion, Records, RegisteredModel, from_millis, public_tags
from jupyter_mlops.refs import MAX_VERSION, ModelRef

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from sqlalchemy.orm import Session

    from jupyter_mlops.workspace import Workspace

CREATED_BY_TAG = "mlops.created_by"
ARCHIVED_TAG = "mlops.archived"
FLAVOR_TAG = "mlops.flavor"
REGISTRATION_EXPERIMENT = "model-registrations"
_PAGE = 200_000  # MLflow's largest page of a version search
T = TypeVar("T")


def current_user() -> str:
    return os.environ.get("MLOPS_USER") or getpass.getuser()


class ModelRegistry:
    """The registry of one workspace. Versions are MLflow model versions; we add no second registry."""

    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace
        self._known_models: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        """The release verbs (evaluate, approve, promote, history...) live in ``release/``; ``ws.models`` has them."""
        from jupyter_mlops.release import VERBS

        if name in VERBS:
            return getattr(self.ws.release, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __dir__(self) -> list[str]:
        from jupyter_mlops.release import VERBS

        return sorted({*super().__dir__(), *VERBS})

    # -- register ---------------------------------------------------------------------------------------------
    def register(
        self,
        source: Any,
        name: str,
        *,
        tags: dict[str, str] | None = None,
        description: str | None = None,
        sample: Any = None,
    ) -> ModelVersion:
        """Register ``source`` as the next version of ``name``.

        ``source``: a scikit-learn estimator, an ONNX ``ModelProto``, an ``mlflow.pyfunc.PythonModel``, a
        ``runs:/`` or ``models:/`` URI, or a local file or folder (every file is kept byte for byte). Inside a
        job the files go to the job's run, so the version links to the run that trained it. A scikit-learn model
        with a sample (``sample``: rows like its training data, or its MLflow input example) is also converted
        to ONNX, proven on it, as the next version: endpoints serve that from their first request
        (``deploy/auto_onnx.py``).
        """
        check_name(name, "model")
        tags = {str(k): str(v) for k, v in (tags or {}).items()}
        if isinstance(source, str) and source.startswith(("runs:/", "models:/")):
            uri, run_id, flavor = self._resolve_uri_source(source)
        elif isinstance(source, (str, os.PathLike)):
            path = Path(source).expanduser()
            check_source(path, name)
            uri, run_id = self._upload(path, name)
            flavor = "mlflow" if (path / "MLmodel").is_file() else "files"
        else:
            if _mlflow.model_flavor(source) is None:
                _mlflow.save_model_object(source, Path("."))  # raises the "supported types" error
            with tempfile.TemporaryDirectory(prefix="mlops-model-") as tmp:
                flavor = _mlflow.save_model_object(source, Path(tmp) / "model")
                uri, run_id = self._upload(Path(tmp) / "model", name)
        version_tags = {**tags, CREATED_BY_TAG: current_user(), FLAVOR_TAG: flavor}
        created = _version_record(self._create_version(name, uri, run_id, version_tags, description))
        self.ws.events.emit(
            "model.registered",
            f"models/{name}/versions/{created.version}",
            envelope.model_registered(
                name, created.version, created.tags, description, runId=run_id, source=uri, createdBy=created.created_by
            ),
        )
        if flavor == "mlflow" or (flavor == "sklearn" and sample is not None):  # a sample to prove a conversion on?
            from jupyter_mlops.deploy.auto_onnx import convert_at_registration

            convert_at_registration(self.ws, created, sample)
        return created

    def _resolve_uri_source(self, uri: str) -> tuple[str, str | None, str]:
        client = self.ws.client
        if uri.startswith("models:/"):
            ref = ModelRef.parse(uri)
            version = self.get(ref.name, ref.selector)
            return version.source, version.run_id, "mlflow"
        run_id, _, artifact_path = uri[len("runs:/") :].partition("/")
        with _mlflow.translated_errors(f"run {run_id!r}"):
            run = client.get_run(run_id)
            if artifact_path and not client.list_artifacts(run_id, artifact_path):
                raise InvalidInput(
                    f"Cannot register {uri!r}: run {run_id} has no artifacts under {artifact_path!r}; "
                    "nothing was registered.",
                    uri=uri,
                )
        return f"{run.info.artifact_uri.rstrip('/')}/{artifact_path}", run_id, "mlflow"

    def _upload(self, path: Path, name: str) -> tuple[str, str]:
        """Copy a file or folder into a run's artifacts: the job's run if one is active, else a new one."""
        from jupyter_mlops.jobs import current_job

        client = self.ws.client
        job = current_job()
        with _mlflow.translated_errors(f"uploading the files of {name!r}"):
            if job is not None and job.ws is self.ws:
                run_id, artifact_path, own_run = job.run_id, f"models/{name}-{uuid.uuid4().hex[:8]}", False
            else:
                run = client.create_run(
                    self.ws.experiment_id(REGISTRATION_EXPERIMENT),
                    run_name=f"register-{name}",
                    tags={"mlflow.user": current_user()},
                )
                run_id, artifact_path, own_run = run.info.run_id, "model", True
            try:
                if path.is_dir():
                    client.log_artifacts(run_id, str(path), artifact_path)
                else:
                    client.log_artifact(run_id, str(path), artifact_path)
            except BaseException as exc:
                reason = upload_failure(exc, path, name)
                self._discard_upload(run_id, artifact_path, own_run, reason)
                if reason is not None:
                    raise reason from exc
                raise
            if own_run:
                _mlflow.terminate_run(client, run_id, "FINISHED")
                artifact_uri = run.info.artifact_uri
            else:
                artifact_uri = job.artifact_uri
        return f"{artifact_uri.rstrip('/')}/{artifact_path}", run_id

    def _discard_upload(self, run_id: str, artifact_path: str, own_run: bool, reason: Exception | None) -> None:
        """No partial upload stays: remove what reached the artifact store; a run of our own ends FAILED with
        the reason (a job's run is the job's to end)."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        client = self.ws.client
        with _suppressed():
            get_artifact_repository(client.get_run(run_id).info.artifact_uri).delete_artifacts(artifact_path)
        if own_run:
            with _suppressed():
                if reason is not None:
                    client.set_tag(run_id, "mlops.error", str(reason)[:5000])
                _mlflow.terminate_run(client, run_id, "FAILED")

    def _create_version(
        self, name: str, source: str, run_id: str | None, tags: dict[str, str], description: str | None
    ):
        client = self.ws.client
        created_model = False
        # a remote registry's client logs "Waiting up to 300 seconds..." at INFO for every version
        waiting = _mlflow.quiet("mlflow.store.model_registry.abstract_store")
        with _mlflow.translated_errors(f"registering a version of {name!r}"), waiting:
            if name not in self._known_models:
                created_model = self._ensure_model(name)
            try:
                return _retry_when_locked(
                    lambda: client.create_model_version(name, source, run_id=run_id, tags=tags, description=description)
                )
            except Exception as exc:
                if not _mlflow.is_not_found(exc):
                    self._drop_if_empty(name, created_model)
                    raise
                # deleted by another process since we cached its name
                self._known_models.discard(name)
                created_model = self._ensure_model(name)
                try:
                    return _retry_when_locked(
                        lambda: client.create_model_version(
                            name, source, run_id=run_id, tags=tags, description=description
                        )
                    )
                except BaseException:
                    self._drop_if_empty(name, created_model)
                    raise

    def _ensure_model(self, name: str) -> bool:
        """Create the registered model unless it exists; True when this call created it."""
        try:
            _retry_when_locked(lambda: self.ws.client.create_registered_model(name))
            created = True
        except Exception as exc:
            if not _mlflow.is_already_exists(exc):
                raise
            created = False
        self._known_models.add(name)
        return created

    def _drop_if_empty(self, name: str, created_here: bool) -> None:
        """No half-registered model: remove a registered model this call created if no version made it."""
        if created_here:
            try:
                if not self.ws.client.search_model_versions(f"name = '{name}'", max_results=1):
                    self.ws.client.delete_registered_model(name)
                    self._known_models.discard(name)
            except Exception:
                pass

    # -- read -------------------------------------------------------------------------------------------------
    def get(self, name: str, version: int | str | None = None) -> ModelVersion:
        """One version: a number, an alias (``champion``), ``latest``, or None for the latest."""
        client = self.ws.client
        with _mlflow.translated_errors(f"model {name!r}"):
            if version is None or str(version) == "latest":
                versions = self._versions_of(name)
                if not versions:
                    raise NotFound(f"Model {name!r} has no versions.", name=name)
                return max(versions, key=lambda v: v.version)
            if str(version).isdigit():
                if not 1 <= int(version) <= MAX_VERSION:
                    raise InvalidInput(f"Model versions are numbers from 1 to {MAX_VERSION}, not {version}.")
                try:
                    return _version_record(client.get_model_version(name, str(version)))
                except Exception as exc:
                    if _mlflow.is_not_found(exc):
                        raise self._not_found(name, version) from exc
                    raise
            try:
                return _version_record(client.get_model_version_by_alias(name, str(version)))
            except Exception as exc:
                if _mlflow.is_not_found(exc):
                    raise self._not_found(name, version) from exc
                raise

    def get_model(self, name: str) -> RegisteredModel:
        with _mlflow.translated_errors(f"model {name!r}"):
            try:
                model = self.ws.client.get_registered_model(name)
            except Exception as exc:
                if _mlflow.is_not_found(exc):
                    raise self._not_found(name) from exc
                raise
        latest = max((int(v.version) for v in model.latest_versions or []), default=None)
        return RegisteredModel(
            name=model.name,
            description=model.description or None,
            tags=public_tags(model.tags or {}),
            aliases={alias: int(v) for alias, v in (model.aliases or {}).items()},
            latest_version=latest,
            created_at=from_millis(model.creation_timestamp),
            updated_at=from_millis(model.last_updated_timestamp),
        )

    def list(self, filter: str | None = None, *, include_archived: bool = False) -> list[ModelVersion]:
        """Versions matching an Azure-style filter (``stage=prod,team=risk``, ``validated``, ``name=churn*``)."""
        mlflow_filter = to_mlflow_filter(filter)
        # MLflow sorts every matching version again for each page: the largest page it allows keeps that once
        search = self.ws.client.search_model_versions
        with _mlflow.translated_errors("searching model versions"), _mlflow.bulk_objects():
            found = _all_pages(lambda token: search(mlflow_filter, max_results=_PAGE, page_token=token))
            aliases = _mlflow.aliases_of(self.ws.client, {v.name for v in found})
            records = [_version_record(v, aliases.get((v.name, int(v.version)))) for v in found]
        if not include_archived:
            records = [r for r in records if not r.archived]
        return Records(sorted(records, key=lambda r: (r.name, r.version)))

    def list_models(self) -> list[RegisteredModel]:
        with _mlflow.translated_errors("listing models"):
            found = _all_pages(lambda token: self.ws.client.search_registered_models(page_token=token))
        return Records(
            [
                RegisteredModel(
                    name=m.name,
                    description=m.description or None,
                    tags=public_tags(m.tags or {}),
                    aliases={alias: int(v) for alias, v in (m.aliases or {}).items()},
                    latest_version=max((int(v.version) for v in m.latest_versions or []), default=None),
                    created_at=from_millis(m.creation_timestamp),
                    updated_at=from_millis(m.last_updated_timestamp),
                )
                for m in sorted(found, key=lambda m: m.name)
            ]
        )

    # -- change -----------------------------------------------------------------------------------------------
    def set_tags(self, name: str, version: int | str, tags: dict[str, str]) -> ModelVersion:
        record = self.get(name, version)
        with _mlflow.translated_errors(f"tagging {name}:{record.version}"):
            for key, value in tags.items():
                self.ws.client.set_model_version_tag(name, str(record.version), str(key), str(value))
        return self._updated(self.get(name, record.version))

    def delete_tags(self, name: str, version: int | str, keys: Iterable[str]) -> ModelVersion:
        record = self.get(name, version)
        missing = [k for k in keys if k not in record.tags]
        if missing:
            raise NotFound(
                f"{name}:{record.version} has no tag {', '.join(map(repr, missing))}; "
                f"its tags: {', '.join(record.tags) or 'none'}.",
                missing=missing,
            )
        with _mlflow.translated_errors(f"untagging {name}:{record.version}"):
            for key in keys:
                self.ws.client.delete_model_version_tag(name, str(record.version), key)
        return self._updated(self.get(name, record.version))

    def set_alias(self, name: str, alias: str, version: int | str) -> ModelVersion:
        record = self.get(name, version)
        if str(alias).isdigit() or alias == "latest":
            raise InvalidInput(f"{alias!r} cannot be an alias: it reads as a version. Choose a name like 'champion'.")
        with _mlflow.translated_errors(f"alias {alias!r} of {name!r}"):
            previous = self.get_model(name).aliases.get(alias)
            self.ws.client.set_registered_model_alias(name, alias, str(record.version))
        self._alias_changed(name, alias, record.version, previous)
        return self.get(name, record.version)

    def delete_alias(self, name: str, alias: str) -> None:
        aliases = self.get_model(name).aliases
        if alias not in aliases:
            raise NotFound(f"Model {name!r} has no alias {alias!r}; its aliases: {', '.join(aliases) or 'none'}.")
        with _mlflow.translated_errors(f"alias {alias!r} of {name!r}"):
            self.ws.client.delete_registered_model_alias(name, alias)
        self._alias_changed(name, alias, None, aliases[alias])

    def _alias_changed(self, name: str, alias: str, version: int | None, previous: int | None) -> None:
        self.ws.events.emit(
            "model.alias_changed",
            f"models/{name}/aliases/{alias}",
            {
                "modelName": name,
                "alias": alias,
                "modelVersion": None if version is None else str(version),
                "previousVersion": None if previous is None else str(previous),
            },
        )

    def archive(self, name: str, version: int | str, *, archived: bool = True) -> ModelVersion:
        """Hide a version from listings (kept, downloadable, restorable with ``archived=False``)."""
        record = self.get(name, version)
        with _mlflow.translated_errors(f"archiving {name}:{record.version}"):
            if archived:
                self.ws.client.set_model_version_tag(name, str(record.version), ARCHIVED_TAG, "true")
            elif record.archived:
                self.ws.client.delete_model_version_tag(name, str(record.version), ARCHIVED_TAG)
        return self._updated(self.get(name, record.version))

    def _updated(self, record: ModelVersion) -> ModelVersion:
        """Emit ``model.updated`` (tags or archived changed) and return the version as it is now."""
        self.ws.events.emit(
            "model.updated",
            f"models/{record.name}/versions/{record.version}",
            {
                "modelName": record.name,
                "modelVersion": str(record.version),
                "modelTags": record.tags,
                "archived": record.archived,
            },
        )
        return record

    def download(self, name: str, version: int | str, dest: str | os.PathLike[str]) -> Path:
        """Copy every file of a version into ``dest`` (created if needed), byte for byte; returns ``dest``."""
        import mlflow.artifacts

        record = self.get(name, version)
        dest_path = Path(dest).expanduser().resolve()
        if dest_path.exists() and not dest_path.is_dir():
            raise Conflict(
                f"Cannot download {name}:{record.version} into {dest_path}: it is a file. Name a folder (new or "
                "existing) to download into.",
                path=str(dest_path),
            )
        try:
            dest_path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidInput(
                f"Cannot download {name}:{record.version} into {dest_path}: {exc.strerror}.", path=str(dest_path)
            ) from exc
        with (
            tempfile.TemporaryDirectory(prefix=".mlops-download-", dir=dest_path) as tmp,
            _mlflow.translated_errors(f"downloading {name}:{record.version}"),
        ):
            local = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=record.source, dst_path=tmp, tracking_uri=self.ws.tracking_uri
                )
            )
            for item in local.iterdir() if local.is_dir() else [local]:
                target = dest_path / item.name
                if target.exists():
                    raise Conflict(f"Cannot download {name}:{record.version} into {dest_path}: {target} exists.")
                shutil.move(str(item), target)
        return dest_path

    def delete(self, name: str, version: int | str | None = None, *, force: bool = False) -> list[int]:
        """Delete one version, or the whole model when ``version`` is None; returns the versions deleted.

        Refused with ModelInUseError while an active deployment uses it, and while an alias points at it
        unless ``force`` (then the aliases are removed first, explicitly).
        """
        if version is None:
            self.get_model(name)
            targets = sorted(v.version for v in self._versions_of(name))
        else:
            targets = [self.get(name, version).version]
        with self.guard(name) as session:  # a deploy of the same model waits, or has recorded its deployment
            return self._delete_guarded(session, name, version, targets, force=force)

    def guard(self, name: str) -> AbstractContextManager[Session]:
        """Hold the model ``name`` still across processes (and machines, on a shared store): deleting a version and
        recording a deployment of it take this guard, so whichever comes second sees what the first did."""
        return self.ws.store.guard(f"model:{name}")

    def _delete_guarded(
        self, session: Session, name: str, version: int | str | None, targets: list[int], *, force: bool
    ) -> list[int]:
        deployments = self.deployments_using(name, None if version is None else targets[0], session=session)
        if deployments:
            what = name if version is None else f"{name}:{targets[0]}"
            raise ModelInUseError(
                f"Cannot delete {what}: it is used by the active deployment(s) {', '.join(deployments)}. "
                "Move their traffic to another version and delete those deployments first.",
                deployments=deployments,
            )
        aliases = {a: v for a, v in self.get_model(name).aliases.items() if v in targets}
        if aliases and not force:
            raise ModelInUseError(
                f"Cannot delete {name}{'' if version is None else ':' + str(targets[0])}: alias(es) "
                f"{', '.join(f'{a} -> {v}' for a, v in aliases.items())} point at it. Move the alias(es), or "
                "pass force=True (--force) to delete them with it.",
                deployments=[],
                aliases=list(aliases),
            )
        with _mlflow.translated_errors(f"deleting {name}"):
            for alias in aliases:
                self.ws.client.delete_registered_model_alias(name, alias)
            if version is None:
                self.ws.client.delete_registered_model(name)
                self._known_models.discard(name)
            else:
                self.ws.client.delete_model_version(name, str(targets[0]))
        for alias, pointed in aliases.items():
            self._alias_changed(name, alias, None, pointed)
        self.ws.events.emit(
            "model.deleted",
            f"models/{name}" if version is None else f"models/{name}/versions/{targets[0]}",
            {"modelName": name, "modelVersions": [str(v) for v in targets], "wholeModel": version is None},
        )
        return targets

    def deployments_using(self, name: str, version: int | None = None, *, session: Session | None = None) -> list[str]:
        """``endpoint/deployment`` of each active deployment serving ``name`` (one version, or any)."""
        from sqlalchemy import select

        from jupyter_mlops.store.schema import ACTIVE_DEPLOYMENT_STATES, Deployment

        query = select(Deployment).where(Deployment.model_name == name, Deployment.status.in_(ACTIVE_DEPLOYMENT_STATES))
        if version is not None:
            query = query.where(Deployment.model_version == int(version))
        if session is not None:
            return sorted(d.qualified_name for d in session.scalars(query))
        with self.ws.store.session() as own:
            return sorted(d.qualified_name for d in own.scalars(query))

    # -- helpers ----------------------------------------------------------------------------------------------
    def _versions_of(self, name: str) -> list[ModelVersion]:
        found = _all_pages(lambda token: self.ws.client.search_model_versions(f"name = '{name}'", page_token=token))
        aliases = self.get_model(name).aliases  # raises NotFound with suggestions when the model does not exist
        by_version: dict[int, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(version, []).append(alias)
        return [_version_record(v, by_version.get(int(v.version))) for v in found]

    def _not_found(self, name: str, version: int | str | None = None) -> NotFound:
        client = self.ws.client
        if version is not None:
            try:
                model = client.get_registered_model(name)
            except Exception:
                model = None
            if model is not None:
                versions = sorted(v.version for v in self._versions_of(name))
                aliases = sorted(model.aliases or {})
                return NotFound(
                    f"Model {name!r} has no version or alias {str(version)!r}. "
                    f"Versions: {', '.join(map(str, versions)) or 'none'}"
                    f"{'; aliases: ' + ', '.join(aliases) if aliases else ''}.",
                    name=name,
                    versions=versions,
                    aliases=aliases,
                )
        names = sorted(m.name for m in _all_pages(lambda t: client.search_registered_models(page_token=t)))
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        listed = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
        return NotFound(
            f"No model named {name!r}.{hint} Registered models: {listed or 'none yet'}.",
            name=name,
            suggestions=close,
            models=names,
        )


class _suppressed(contextlib.suppress):
    """Clean-up after a failure must not hide the failure."""

    def __init__(self) -> None:
        super().__init__(Exception)


def _version_record(v: Any, aliases: list[str] | None = None) -> ModelVersion:
    tags = dict(v.tags or {})
    return ModelVersion(
        name=v.name,
        version=int(v.version),
        tags=public_tags(tags),
        aliases=sorted(aliases if aliases is not None else (getattr(v, "aliases", None) or [])),
        description=v.description or None,
        source=v.source,
        run_id=v.run_id or None,
        created_by=tags.get(CREATED_BY_TAG) or v.user_id or None,
        created_at=from_millis(v.creation_timestamp),
        archived=tags.get(ARCHIVED_TAG) == "true",
    )


def _all_pages(fetch: Callable[[str | None], Any]) -> list[Any]:
    items: list[Any] = []
    token = None
    while True:
        page = fetch(token)
        items.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return items


def _retry_when_locked(call: Callable[[], T], attempts: int = 20) -> T:
    """SQLite answers 'database is locked' when another process holds the write lock: wait and retry."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:
            if attempt == attempts - 1 or not _is_lock_error(exc):
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) or "database is locked" in text or "locked" in text


__all__ = ["ModelRegistry", "current_user"]
