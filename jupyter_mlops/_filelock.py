"""An exclusive lock between processes on one machine (fcntl), for one-off set-up steps such as migrations."""

from __future__ import annotations

import fcntl
import threading
from pathlib import Path
from typing import IO

# Alembic's ``op`` and ``context`` are module globals: two threads migrating at once (our metadata store and
# MLflow's tracking store, say) break each other half-way. Every migration in this process takes this lock.
MIGRATIONS = threading.RLock()


class FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    def __enter__(self) -> FileLock:
        self._handle = open(self.path, "a+")
        fcntl.flock(self._handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._handle is not None
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()
        self._handle = None
