"""One execution of a notebook with papermill, as a picklable :class:`Job` in and an :class:`Outcome` out.

The same function runs in the runner's process (on a kernel the runner started ahead of time) and as a task on
a Dask worker (which starts its own kernel). It never talks to MLflow: the outcome carries the executed notebook,
stdout/stderr and the metrics the notebook wrote, and the runner records them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import tempfile
import threading
import traceback
from pathlib import Path
from typing import Any

from jupyter_mlops.pipelines import kernels


@dataclasses.dataclass(frozen=True)
class Job:
    name: str  # the step (and trial): only for temporary names
    notebook: str
    parameters: dict[str, Any]  # with inputs and outputs as paths
    kernel_name: str
    outputs: dict[str, str]
    folder_outputs: tuple[str, ...] = ()
    timeout: float | None = None
    metrics_output: str | None = None  # the output holding a JSON object of metrics (sweeps)


@dataclasses.dataclass(frozen=True)
class Outcome:
    error: str | None  # None: the notebook ran and wrote its outputs
    files: dict[str, bytes]  # executed notebook (under its own name), stdout.txt, stderr.txt
    metrics: dict[str, float]
    where: str  # the host and process (or Dask worker) that ran it


def execute(job: Job, kernel: kernels.Kernel | None = None) -> Outcome:
    """Run ``job`` on ``kernel``, or on a fresh kernel started (and shut down) here."""
    own = kernel is None
    if kernel is None:
        kernel = kernels.Kernel(job.kernel_name, Path(job.notebook).parent)
    try:
        return _run(job, kernel)
    finally:
        if own:
            kernel.shutdown()


def _where() -> str:
    with contextlib.suppress(ImportError, ValueError):
        from distributed import get_worker

        return get_worker().address
    return f"{socket.gethostname()}:{os.getpid()}"


def _run(job: Job, kernel: kernels.Kernel) -> Outcome:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    outputs = {k: Path(p) for k, p in job.outputs.items()}
    for name, path in outputs.items():
        (path if name in job.folder_outputs else path.parent).mkdir(parents=True, exist_ok=True)
    timed_out = threading.Event()
    timer = None
    if job.timeout:
        timer = threading.Timer(job.timeout, lambda: (timed_out.set(), kernel.kill()))
        timer.daemon = True
        timer.start()
    error: str | None = None
    metrics: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix=f"mlops-step-{job.name}-") as tmp:
        executed = Path(tmp) / Path(job.notebook).name
        stdout, stderr = Path(tmp) / "stdout.txt", Path(tmp) / "stderr.txt"
        try:
            with stdout.open("w") as out, stderr.open("w") as err:
                papermill.execute_notebook(
                    job.notebook,
                    str(executed),
                    parameters=job.parameters,
                    engine_name=kernels.register_engine(),
                    kernel_name=kernel.name,
                    km=kernel.manager,
                    progress_bar=False,
                    stdout_file=out,
                    stderr_file=err,
                )
        except PapermillExecutionError as exc:
            error = f"{exc.ename}: {exc.evalue} (cell {exc.exec_count})"
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if timed_out.is_set():
                error = f"timed out after {job.timeout:g} s (timeout: in the spec)"
            with contextlib.suppress(OSError), stderr.open("a") as err:
                err.write(traceback.format_exc())
                err.write(f"\n--- the kernel process's own output ---\n{kernel.output()}")
        finally:
            if timer is not None:
                timer.cancel()
        if error is None:
            missing = [n for n, p in outputs.items() if not p.exists()]
            if missing:
                error = (
                    f"the notebook did not write output(s) {', '.join(missing)} "
                    f"({', '.join(str(outputs[m]) for m in missing)})"
                )
        if error is None and job.metrics_output is not None:
            metrics, error = read_metrics(outputs[job.metrics_output])
        files = {p.name: p.read_bytes() for p in (executed, stdout, stderr) if p.exists()}
    return Outcome(error=error, files=files, metrics=metrics, where=_where())


def read_metrics(path: Path) -> tuple[dict[str, float], str | None]:
    """The numbers in a metrics JSON object (others are left out), or an error saying what is wrong."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return {}, f"the metrics output {path} is not valid JSON: {exc}"
    if not isinstance(data, dict):
        return {}, f'the metrics output {path} must hold a JSON object such as {{"accuracy": 0.93}}'
    numbers = {k: float(v) for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return numbers, None
