"""What a registration may read, and what to say when the disk fails it.

A named pipe would block the read forever, a device never ends and a socket cannot be read: they are refused
before anything is read. A source that vanishes, a read-only or full artifact store: one clear error naming the
path, instead of a traceback.
"""

from __future__ import annotations

import errno
import stat
from pathlib import Path

from jupyter_mlops.exceptions import InvalidInput, MlopsError


def check_source(path: Path, name: str) -> None:
    """Refuse before reading anything: a missing path, or anything but a regular file or a folder of regular files
    (a named pipe would block the read forever, a device never ends, a socket cannot be read)."""
    if not path.exists():
        raise InvalidInput(
            f"Cannot register {name!r}: the path {str(path)!r} does not exist; nothing was registered.", path=str(path)
        )
    entries = [path] if not path.is_dir() else [path, *path.rglob("*")]
    for entry in entries:
        mode = entry.stat().st_mode if entry.exists() else 0
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            kind = _file_kind(mode)
            raise InvalidInput(
                f"Cannot register {name!r}: {str(entry)!r} is {kind}, not a regular file; register files or folders "
                "of files. Nothing was registered.",
                path=str(entry),
            )


def _file_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "a broken link or a special file"


def upload_failure(exc: BaseException, path: Path, name: str) -> MlopsError | None:
    """A clear error for what went wrong on the disk (source vanished, store read-only or full); None to re-raise
    ``exc`` itself (an interrupt, or an error that is already ours)."""
    if isinstance(exc, MlopsError) or not isinstance(exc, Exception):
        return None
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, FileNotFoundError):
        what = f"{str(cause.filename or path)!r} disappeared while it was being registered"
    elif isinstance(cause, OSError):
        where = cause.filename or path
        what = f"copying {str(where)!r} failed: {cause.strerror or cause}"
        if cause.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            what += " (the artifact store is not writable: check the permissions of the workspace's artifacts/)"
        elif cause.errno == errno.ENOSPC:
            what += " (the disk is full)"
    else:
        return None
    return InvalidInput(f"Cannot register {name!r}: {what}. Nothing was registered.", path=str(path))


__all__ = ["check_source", "upload_failure"]
