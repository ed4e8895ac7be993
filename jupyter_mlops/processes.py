"""Processes we start and must recognise later: their identity, whether they still run, how to stop them.

A pid alone is not an identity: after a crash the system may give it to an unrelated process. ``ProcessIdentity``
adds the host and the start time (clock ticks since boot, from ``/proc``), so a reused pid is never mistaken for
ours. Endpoint workers, deployment processes and pipeline runners all record and check it the same way.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def process_start(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot, Linux), or "" where /proc does not say."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


def alive(pid: int | None) -> bool:
    """Whether ``pid`` runs on this machine (a zombie, exited but not yet reaped, does not)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, ValueError):
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


@dataclass(frozen=True)
class ProcessIdentity:
    """A process as recorded: host, pid and start time."""

    pid: int
    started: str = ""
    host: str = ""

    @classmethod
    def current(cls) -> ProcessIdentity:
        return cls.of(os.getpid())

    @classmethod
    def of(cls, pid: int) -> ProcessIdentity:
        return cls(pid, process_start(pid), socket.gethostname())

    @property
    def local(self) -> bool:
        return not self.host or self.host == socket.gethostname()

    def alive(self) -> bool:
        """Whether this very process still runs; one on another host counts as alive (we cannot tell)."""
        if not self.local:
            return True
        if not alive(self.pid):
            return False
        now = process_start(self.pid)
        return not self.started or not now or now == self.started

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.started}"

    @classmethod
    def parse(cls, text: str | None) -> ProcessIdentity | None:
        """The identity written by ``str()``; None for an empty or unreadable text."""
        host, _, rest = (text or "").partition(":")
        pid, _, started = rest.partition(":")
        return cls(int(pid), started, host) if pid.isdigit() else None


def stop_process_group(pid: int | None, grace_s: float = 10.0) -> None:
    """SIGTERM the process group (in-flight requests finish), SIGKILL what is left after ``grace_s``."""
    if not alive(pid):
        return
    assert pid is not None
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.05)
    if alive(pid):
        os.killpg(pid, signal.SIGKILL)


def start_detached(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``command`` in a session of its own (a kernel restart or Ctrl-C does not stop it), its output appended
    to ``log``, without MLflow's download bars."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as output:
        return subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"},
        )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


__all__ = ["ProcessIdentity", "alive", "free_port", "process_start", "start_detached", "stop_process_group"]
