"""Fresh kernels for steps, started ahead of time and shut down off the critical path.

Each step gets its own new kernel. Starting one costs most of a trivial step's time, so the runner starts the
kernel of a step while its upstream steps still run; shutting one down can stall for seconds, so it happens
after the step's result is recorded. A kernel lives on one thread from start to shutdown (its client's zmq
sockets belong to that thread's event loop).

A step kernel talks to its runner over IPC (Unix sockets) in a private folder of its own, removed at shutdown:
no TCP ports open on the machine, and no "Kernel is running over TCP without encryption" warning from each kernel.
The folder is named after the process that started the kernel, so that the first kernel a process starts removes
the folders of processes that are gone (a runner killed outright cannot remove its own).
papermill (whose import costs about as much as a kernel start) is imported only once a notebook must execute.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any

from jupyter_mlops.processes import ProcessIdentity

ENGINE_NAME = "mlops-prestarted"
SHUTDOWN_WAIT_S = 1.0  # the kernel has finished its work: do not wait long for a polite exit
_started = 0
_started_lock = threading.Lock()
_engine_registered = False
_engine_lock = threading.Lock()
RUNTIME_PREFIX = "mlops-kernel-"  # + PID-START-random: the folder of one kernel's sockets and connection file
_swept = False


def kernels_started() -> int:
    """How many kernels this process started for pipeline steps (the tests check a fully reused run adds none)."""
    return _started


class Kernel:
    """A started kernel process with the manager papermill drives it through."""

    def __init__(self, kernel_name: str, cwd: Path) -> None:
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        global _started
        self.name = kernel_name
        self.runtime = _runtime_folder()
        self.manager = AsyncKernelManager(
            kernel_name=kernel_name, transport="ipc", connection_file=str(self.runtime / "kernel.json")
        )
        self.manager.shutdown_wait_time = SHUTDOWN_WAIT_S
        # the kernel process's own output (start-up warnings, a crash): kept apart from the runner's terminal
        self._log = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 (closed by shutdown(), with the kernel)
        # ipykernel keeps a SQLite history file; parallel kernels would contend for it
        try:
            run_sync(self.manager.start_kernel)(
                cwd=str(cwd),
                extra_arguments=["--HistoryManager.hist_file=:memory:"],
                stdout=self._log,
                stderr=self._log,
            )
        except BaseException:
            self._log.close()
            shutil.rmtree(self.runtime, ignore_errors=True)
            raise
        with _started_lock:
            _started += 1

    @property
    def pid(self) -> int | None:
        provisioner = self.manager.provisioner
        return getattr(provisioner, "pid", None) if provisioner is not None else None

    def kill(self) -> None:
        """Kill the kernel's process group at once (from any thread): a timeout or Ctrl-C."""
        pid = self.pid
        if pid:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)

    def shutdown(self) -> None:
        """Ask the kernel to exit, kill it after a short wait; call on the thread that started it."""
        from jupyter_core.utils import run_sync

        with contextlib.suppress(Exception):
            run_sync(self.manager.shutdown_kernel)()
        self._log.close()
        shutil.rmtree(self.runtime, ignore_errors=True)  # the sockets and connection file, also after a kill

    def output(self) -> str:
        """What the kernel process printed itself (not the notebook's output): useful when it died."""
        with contextlib.suppress(OSError, ValueError):
            self._log.seek(0)
            return self._log.read().decode(errors="replace")
        return ""


def _runtime_folder() -> Path:
    """A new private folder (mkdtemp makes it 0o700: only this user reaches the sockets and connection file)."""
    global _swept
    me = ProcessIdentity.current()
    with _started_lock:
        sweep, _swept = not _swept, True
    if sweep:
        _remove_orphans()
    return Path(tempfile.mkdtemp(prefix=f"{RUNTIME_PREFIX}{me.pid}-{me.started or 0}-"))


def _remove_orphans() -> None:
    """Remove the kernel folders whose starting process is gone (a reused PID has another start time)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{RUNTIME_PREFIX}*-*-*"):
        pid, started, _ = folder.name.removeprefix(RUNTIME_PREFIX).split("-", 2)
        with contextlib.suppress(OSError):  # another process may remove it meanwhile
            if not (pid.isdigit() and started.isdigit()) or folder.stat().st_uid != os.getuid():
                continue
            if not ProcessIdentity(int(pid), "" if started == "0" else started).alive():
                shutil.rmtree(folder, ignore_errors=True)


def register_engine() -> str:
    """A papermill engine that runs a notebook on an already started kernel manager (``km=``).

    Called once a notebook must execute, after its kernel was launched: papermill's import then overlaps the
    kernel's own start-up, and a run that only reuses steps never imports it.
    """
    global _engine_registered
    with _engine_lock:  # the runner's worker threads may get here at once
        if not _engine_registered:
            _register()
            _engine_registered = True
    return ENGINE_NAME


def _register() -> None:
    from papermill.engines import NBClientEngine, papermill_engines

    class PrestartedKernelEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man: Any,
            kernel_name: str,
            log_output: bool = False,
            stdout_file: Any = None,
            stderr_file: Any = None,
            start_timeout: int = 60,
            execution_timeout: float | None = None,
            km: Any = None,
            **kwargs: Any,
        ) -> Any:
            from papermill.clientwrap import PapermillNotebookClient
            from papermill.log import logger

            client = PapermillNotebookClient(
                nb_man,
                km=km,
                timeout=execution_timeout,
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log=logger,
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
            )
            try:
                return client.execute()
            finally:
                # nbclient leaves the client of a kernel it does not own open: close its sockets here
                if client.kc is not None:
                    client.kc.stop_channels()

    papermill_engines.register(ENGINE_NAME, PrestartedKernelEngine)
