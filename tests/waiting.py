"""Waiting for what happens in other processes (collectors, metrics snapshots, signals) without fixed sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float = 15.0, interval: float = 0.05) -> T:
    """``check()`` once it is truthy; its last value when ``timeout`` runs out (the caller's assert says what)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def wait_gone(pid: int) -> None:
    """SIGKILL is delivered asynchronously, and a multi-threaded process shows as a zombie while its other threads
    still hold its files: wait until no thread of it holds a file any more, so its listening socket is closed."""
    eventually(lambda: not _holds_files(pid), timeout=10, interval=0.02)


def _holds_files(pid: int) -> bool:
    try:
        return any(any(task.joinpath("fd").iterdir()) for task in Path(f"/proc/{pid}/task").iterdir())
    except OSError:  # the process or one of its threads went away meanwhile
        return Path(f"/proc/{pid}/task").exists()


def zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] == "Z"
