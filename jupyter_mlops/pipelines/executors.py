"""Where step notebooks execute: in this process's threads (``local``) or as tasks on a Dask cluster (``dask``).

The runner hands an executor a :class:`~jupyter_mlops.pipelines.execution.Job` and gets an ``Outcome`` back; it
keeps every MLflow record in its own process. A Dask worker needs the project (the notebooks at the same paths),
the step kernels, and storage shared with the runner for inputs and outputs.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from jupyter_mlops.exceptions import BackendUnavailable, InvalidInput
from jupyter_mlops.pipelines import execution

if TYPE_CHECKING:
    from jupyter_mlops.pipelines import kernels

EXECUTORS = ("local", "dask")
CONNECT_TIMEOUT_S = 5


class LocalExecutor:
    """Notebooks run on kernels this process starts (ahead of time, off the critical path)."""

    name = "local"
    prestarts = True
    slots = None  # the runner's default: this machine's CPU count

    def run(self, job: execution.Job, kernel: kernels.Kernel | None) -> execution.Outcome:
        return execution.execute(job, kernel)

    def cancel(self) -> None:
        """Nothing to do: the runner kills the kernels it started."""

    def close(self) -> None:
        pass


class DaskExecutor:
    """Each execution is one task on an existing Dask distributed cluster; its worker starts a fresh kernel."""

    name = "dask"
    prestarts = False

    def __init__(self, scheduler: str) -> None:
        try:
            from distributed import Client
        except ImportError as exc:
            raise InvalidInput(
                "--executor dask needs Dask distributed, which is not installed: "
                "pip install 'dask[distributed]' (on the runner's machine and the workers).",
            ) from exc
        self.scheduler = scheduler
        self._futures: set[Any] = set()
        try:
            self.client = Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise BackendUnavailable(
                f"The Dask scheduler at {scheduler} does not answer ({type(exc).__name__}: {exc}); "
                "check the address (tcp://HOST:PORT) and that the scheduler runs.",
                scheduler=scheduler,
            ) from exc

    @property
    def slots(self) -> int:
        """How many notebooks the cluster runs at once: its worker threads."""
        return max(1, sum(self.client.nthreads().values()))

    def run(self, job: execution.Job, kernel: kernels.Kernel | None) -> execution.Outcome:
        future = self.client.submit(execution.execute, job, pure=False, key=f"mlops-{job.name}-{uuid.uuid4().hex}")
        self._futures.add(future)
        try:
            return future.result()
        finally:
            self._futures.discard(future)

    def cancel(self) -> None:
        """Ctrl-C: cancel what waits; a notebook already running on a worker finishes there, unrecorded."""
        if self._futures:
            self.client.cancel(list(self._futures))

    def close(self) -> None:
        self.client.close()


def create(executor: str, scheduler: str | None) -> LocalExecutor | DaskExecutor:
    if executor not in EXECUTORS:
        raise InvalidInput(f"--executor {executor}: unknown executor; choose one of: {', '.join(EXECUTORS)}.")
    if executor == "local":
        if scheduler:
            raise InvalidInput("--scheduler is only for --executor dask.")
        return LocalExecutor()
    if not scheduler:
        raise InvalidInput("--executor dask needs --scheduler tcp://HOST:PORT (the address of the Dask scheduler).")
    return DaskExecutor(scheduler)
