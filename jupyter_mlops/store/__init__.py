"""The transactional metadata store: what MLflow has no place for (deployments, and later endpoints, events...).

SQLite in the workspace by default (WAL journal and a busy timeout, so that several processes write at once
without corrupting it), or any SQLAlchemy URL, typically the PostgreSQL database behind a shared MLflow server.
The schema is versioned with alembic; opening a store brings it to the newest revision under a lock.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from jupyter_mlops._filelock import MIGRATIONS, FileLock
from jupyter_mlops.exceptions import BackendUnavailable

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.orm import Session

VERSION_TABLE = "mlops_alembic_version"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_ADVISORY_LOCK_ID = 0x6D6C6F7073  # "mlops"


class MetadataStore:
    """One database, opened lazily, migrated to the newest schema on first use."""

    def __init__(self, url: str, *, lock_dir: Path | None = None) -> None:
        self.url = url
        self._lock_dir = lock_dir
        self._engine: Engine | None = None
        self._sessionmaker = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = self._connect()
            self._migrate(self._engine)
        return self._engine

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back when it raises."""
        if self._sessionmaker is None:
            from sqlalchemy.orm import sessionmaker

            self._sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        with self._sessionmaker.begin() as session:
            yield session

    @contextlib.contextmanager
    def guard(self, key: str) -> Iterator[Session]:
        """A transaction that holds the lock named ``key`` until it ends, across processes and, on a shared store,
        across machines: a PostgreSQL advisory lock of the transaction, or a lock file beside the SQLite file (a
        SQLite store is one machine's). Checks and the changes they allow happen inside it, never around it."""
        digest = hashlib.sha256(key.encode()).digest()
        if self.engine.dialect.name == "sqlite":
            lock = FileLock((self._lock_dir or Path(".")) / f".mlops-guard-{digest.hex()[:16]}.lock")
            with lock, self.session() as session:
                yield session
            return
        with self.session() as session:
            if self.engine.dialect.name == "postgresql":
                from sqlalchemy import text

                lock_id = int.from_bytes(digest[:8], "big", signed=True)
                session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})
            yield session

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()

    @staticmethod
    def head_revision() -> str:
        return _script_directory().get_current_head()

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
            self._sessionmaker = None

    def _connect(self) -> Engine:
        from sqlalchemy import create_engine, event

        if self.url.startswith("sqlite"):
            engine = create_engine(self.url, connect_args={"timeout": 30})

            @event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_conn, _record) -> None:
                cursor = dbapi_conn.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA busy_timeout=30000")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.close()

            return engine
        return create_engine(self.url, pool_pre_ping=True)

    def _migrate(self, engine: Engine) -> None:
        """Upgrade to head; a file lock (SQLite) or an advisory lock (PostgreSQL) keeps two openers apart."""
        from sqlalchemy.exc import OperationalError

        try:
            with MIGRATIONS, self._migration_lock(engine) as conn:
                _upgrade(conn)
        except OperationalError as exc:
            raise BackendUnavailable(
                f"The metadata store at {_redact(self.url)} does not answer: {exc.orig}. "
                "Check that the database server runs and the URL (MLOPS_METADATA_URI) is right.",
                url=_redact(self.url),
            ) from exc

    @contextlib.contextmanager
    def _migration_lock(self, engine: Engine) -> Iterator[Connection]:
        from sqlalchemy import text

        if engine.dialect.name == "sqlite":
            with FileLock((self._lock_dir or Path(".")) / ".mlops-store.lock"), engine.begin() as conn:
                yield conn
        elif engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
                yield conn
        else:
            with engine.begin() as conn:
                yield conn


def _script_directory():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config)


def _upgrade(conn: Connection) -> None:
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    head = _script_directory().get_current_head()
    current = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()
    if current == head:
        return
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = conn
    config.attributes["version_table"] = VERSION_TABLE
    command.upgrade(config, "head")


def _redact(url: str) -> str:
    """Hide a password in a database URL before it reaches a message."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url
