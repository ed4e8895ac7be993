"""Environments of a workspace: spec versions recorded in the metadata store, built on demand into venvs.

A record goes ``registered`` → ``building`` → ``ready`` | ``failed``. The build of one (name, version) holds a
file lock, so two processes asking for the same environment build it once: the second waits and reuses it.
Venvs live in the workspace cache, ``<workspace>/envs/NAME-HASH12/``.
"""

from __future__ import annotations

import builtins
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from jupyter_mlops._filelock import FileLock
from jupyter_mlops.environments import build as _build
from jupyter_mlops.environments.records import Environment
from jupyter_mlops.environments.spec import EnvironmentSpec, load_spec
from jupyter_mlops.exceptions import InvalidInput, NotFound

if TYPE_CHECKING:
    import os

    from jupyter_mlops.environments.build import Progress
    from jupyter_mlops.workspace import Workspace

DEFAULT_BASE_IMAGE = "python:{python}-slim"


class Environments:
    """Register, list, show, build and export the environments of one workspace."""

    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace

    @property
    def cache(self) -> Path:
        return self.ws.layout.envs

    def register(self, path: str | os.PathLike[str]) -> Environment:
        """Record the spec at ``path`` (validated; its content hash is the version); the same content is a no-op."""
        from sqlalchemy import select
        from sqlalchemy.exc import IntegrityError

        from jupyter_mlops.store.schema import Environment as Row

        spec = load_spec(path)
        query = select(Row).where(Row.name == spec.name, Row.version == spec.version)
        try:
            with self.ws.store.session() as session:
                row = session.scalars(query).one_or_none()
                if row is None:
                    row = Row(name=spec.name, version=spec.version, spec=json.dumps(spec.to_json()))
                    row.status = "registered"
                    session.add(row)
                    session.flush()
                return Environment.from_row(row)
        except IntegrityError:  # another process registered the same content at the same moment
            with self.ws.store.session() as session:
                return Environment.from_row(session.scalars(query).one())

    def list(self) -> builtins.list[Environment]:
        """Every registered version, by name, newest first."""
        from sqlalchemy import select

        from jupyter_mlops.store.schema import Environment as Row

        with self.ws.store.session() as session:
            rows = session.scalars(select(Row).order_by(Row.name, Row.created_at.desc(), Row.id.desc())).all()
            return [Environment.from_row(row) for row in rows]

    def show(self, name: str, version: str | None = None) -> Environment:
        """The newest version of ``name``, or the one whose hash starts with ``version``."""
        from sqlalchemy import select

        from jupyter_mlops.store.schema import Environment as Row

        with self.ws.store.session() as session:
            rows = session.scalars(
                select(Row).where(Row.name == name).order_by(Row.created_at.desc(), Row.id.desc())
            ).all()
            if not rows:
                names = sorted(set(session.scalars(select(Row.name)).all()))
                raise NotFound(
                    f"No environment named {name!r}. Known: {', '.join(names) or 'none'}. "
                    "Register its spec first: jupyter mlops env register envs/NAME.yaml",
                    name=name,
                    available=names,
                )
            matches = [row for row in rows if version is None or row.version.startswith(version)]
            if not matches:
                versions = [row.version[:12] for row in rows]
                raise NotFound(
                    f"Environment {name!r} has no version starting with {version!r}. Versions: {', '.join(versions)}.",
                    name=name,
                    version=version,
                    available=versions,
                )
            if version is not None and len(matches) > 1:
                raise InvalidInput(
                    f"The version {version!r} of environment {name!r} is ambiguous: give more of the hash.",
                    name=name,
                    version=version,
                )
            return Environment.from_row(matches[0])

    def build(self, name: str, version: str | None = None, *, progress: Progress | None = None) -> Environment:
        """A ready venv + kernelspec for the environment: reused when built before, else built now."""
        record = self.show(name, version)
        if self._usable(record) and self._kernelspec_found(record):
            return record
        folder = self.cache / f"{record.name}-{record.version[:12]}"
        with FileLock(self._lock_path(folder)):  # also between threads: each FileLock opens its own handle
            record = self.show(record.name, record.version)  # another process may have built it meanwhile
            if self._usable(record):
                if not self._kernelspec_found(record):  # e.g. built from another Jupyter environment
                    _build.install_kernelspec(Path(record.venv_path or folder), record.kernel_name or "")
                return record
            self._update(record, status="building", error=None)
            requirements = tuple(record.requirements)
            spec = EnvironmentSpec(record.name, record.python, requirements, record.source, record.version)
            kernel = _build.kernel_name(record.name, record.version)
            try:
                lock = _build.build_venv(spec, folder, kernel, progress)
                _build.install_kernelspec(folder, kernel)
            except BaseException as exc:
                shutil.rmtree(folder, ignore_errors=True)
                reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}".rstrip(": ")
                self._update(record, status="failed", error=reason, venv_path=None, kernel_name=None, lock=None)
                raise
            return self._update(
                record, status="ready", venv_path=str(folder), kernel_name=kernel, lock=lock, error=None, built=True
            )

    def built(self, spec_or_name: str | os.PathLike[str], *, progress: Progress | None = None) -> Environment:
        """A ready environment for a spec file (registered on the way) or a registered name, built on demand."""
        text = str(spec_or_name)
        looks_like_file = isinstance(spec_or_name, Path) or text.endswith((".yaml", ".yml")) or "/" in text
        record = self.register(text) if looks_like_file or Path(text).is_file() else self.show(text)
        return self.build(record.name, record.version, progress=progress)

    def kernel_for(self, spec_or_name: str | os.PathLike[str], *, progress: Progress | None = None) -> str:
        """The kernelspec name for a spec file (registered on the way) or a registered name, built on demand."""
        built = self.built(spec_or_name, progress=progress)
        assert built.kernel_name is not None
        return built.kernel_name

    def export(
        self,
        name: str,
        dockerfile_dir: str | os.PathLike[str],
        *,
        version: str | None = None,
        base_image: str | None = None,
        progress: Progress | None = None,
    ) -> Path:
        """Write ``Dockerfile`` and ``requirements.lock`` (built on demand for the lock); returns the Dockerfile."""
        record = self.build(name, version, progress=progress)
        target = Path(dockerfile_dir).expanduser().resolve()
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidInput(f"Cannot create {target}: {exc.strerror}. Give a folder you can write to.") from exc
        image = base_image or DEFAULT_BASE_IMAGE.format(python=record.python)
        (target / _build.LOCK_FILE).write_text(record.lock or "")
        dockerfile = target / "Dockerfile"
        dockerfile.write_text(
            f"# Environment {record.name}, version {record.version} (jupyter-mlops).\n"
            f"# requirements.lock is the `pip freeze` of the venv it was built and tested in.\n"
            f"FROM {image}\n"
            "ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1\n"
            "WORKDIR /app\n"
            f"COPY {_build.LOCK_FILE} /app/{_build.LOCK_FILE}\n"
            f"RUN pip install -r /app/{_build.LOCK_FILE}\n"
        )
        return dockerfile

    def remove(self, name: str, version: str | None = None) -> Environment:
        """Forget one version: its record, its venv and its kernelspec."""
        from sqlalchemy import delete

        from jupyter_mlops.store.schema import Environment as Row

        record = self.show(name, version)
        folder = self.cache / f"{record.name}-{record.version[:12]}"
        with FileLock(self._lock_path(folder)):
            if record.kernel_name:
                _build.remove_kernelspec(record.kernel_name)
            shutil.rmtree(folder, ignore_errors=True)
            with self.ws.store.session() as session:
                session.execute(delete(Row).where(Row.name == record.name, Row.version == record.version))
        return record

    # -- helpers ----------------------------------------------------------------------------------------------
    def _lock_path(self, folder: Path) -> Path:
        (self.cache / ".locks").mkdir(parents=True, exist_ok=True)
        return self.cache / ".locks" / f"{folder.name}.lock"

    @staticmethod
    def _usable(record: Environment) -> bool:
        if record.status != "ready" or not record.venv_path:
            return False
        folder = Path(record.venv_path)
        return (folder / _build.LOCK_FILE).is_file() and _build.venv_python(folder).exists()

    @staticmethod
    def _kernelspec_found(record: Environment) -> bool:
        """Whether the running Jupyter environment finds the kernelspec of this (ready) venv."""
        assert record.venv_path and record.kernel_name
        return _build.installed_kernelspec(record.kernel_name, Path(record.venv_path))

    def _update(self, record: Environment, *, built: bool = False, **values: object) -> Environment:
        from sqlalchemy import select

        from jupyter_mlops.store.schema import Environment as Row
        from jupyter_mlops.store.schema import utcnow

        with self.ws.store.session() as session:
            row = session.scalars(select(Row).where(Row.name == record.name, Row.version == record.version)).one()
            for key, value in values.items():
                setattr(row, key, value)
            if built:
                row.built_at = utcnow()
            session.flush()
            return Environment.from_row(row)
