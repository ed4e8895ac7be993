"""Sweeps: the trial points of a step's ``sweep:``, when to stop early, the best trial and the trials table, and
:class:`SweepRun`, which runs the trials of one step's run.

Each trial runs the step's notebook with one point on a fresh kernel and is recorded as a child run of the step's
run. The notebook reports its metric in the step's ``metrics`` output, a JSON object such as
``{"accuracy": 0.93}``: the runner reads it back (from any executor) and logs every number in it on the trial run.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import itertools
import random
import shutil
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from jupyter_mlops.pipelines import cache, kernels

if TYPE_CHECKING:
    from jupyter_mlops.pipelines import execution, executors, tracking
    from jupyter_mlops.pipelines.spec import Step, SweepSpec

TRIAL_STATES = ("succeeded", "failed", "stopped")  # stopped: not run, the sweep stopped early (or was cancelled)


@dataclasses.dataclass
class Trial:
    trial: int  # 1-based
    parameters: dict[str, Any]
    metric: float | None = None
    status: str = "pending"
    run_id: str | None = None
    error: str | None = None

    def row(self) -> dict[str, Any]:
        """The trials-table row (``--json`` and ``trials.json``)."""
        row = {"trial": self.trial, "parameters": dict(self.parameters), "metric": self.metric}
        row.update(status=self.status, run_id=self.run_id)
        if self.error:
            row["error"] = self.error
        return row


def points(sweep: SweepSpec) -> list[dict[str, Any]]:
    """``grid``: the cartesian product (first ``max_trials`` of it); ``random``: ``max_trials`` seeded draws."""
    names = list(sweep.parameters)
    if sweep.sampling == "grid":
        grid = itertools.product(*(sweep.parameters[n] for n in names))
        return [dict(zip(names, values, strict=True)) for values in itertools.islice(grid, sweep.max_trials)]
    rng = random.Random(sweep.seed)
    drawn = []
    for _ in range(sweep.max_trials or 1):
        point: dict[str, Any] = {}
        for name in names:
            values = sweep.parameters[name]
            if isinstance(values, list):
                point[name] = rng.choice(values)
            elif isinstance(values["min"], int) and isinstance(values["max"], int):
                point[name] = rng.randint(values["min"], values["max"])
            else:
                point[name] = rng.uniform(float(values["min"]), float(values["max"]))
        drawn.append(point)
    return drawn


def best(sweep: SweepSpec, trials: list[Trial]) -> Trial | None:
    """The succeeded trial with the best metric (the first one on a tie), or None when none succeeded."""
    done = [t for t in trials if t.status == "succeeded" and t.metric is not None]
    if not done:
        return None
    sign = 1 if sweep.goal == "maximize" else -1
    return max(done, key=lambda t: (sign * t.metric, -t.trial))  # type: ignore[operator]


def should_stop(sweep: SweepSpec, trials: list[Trial]) -> bool:
    """Whether to launch no more trials: the target is reached, or ``patience`` finished trials brought no gain."""
    rule = sweep.early_stop
    top = best(sweep, trials)
    if rule is None or top is None:
        return False
    sign = 1 if sweep.goal == "maximize" else -1
    if rule.target is not None and sign * top.metric >= sign * rule.target:  # type: ignore[operator]
        return True
    if rule.patience is not None:
        finished = [t for t in trials if t.status in ("succeeded", "failed")]
        return len([t for t in finished if t.trial > top.trial]) >= rule.patience
    return False


def metric_of(sweep: SweepSpec, metrics: dict[str, float]) -> tuple[float | None, str | None]:
    """(value, error) of the sweep's metric in what a trial reported."""
    if sweep.metric not in metrics:
        reported = ", ".join(metrics) or "nothing"
        return None, f"the notebook's metrics output has no {sweep.metric!r} (it has: {reported})"
    return metrics[sweep.metric], None


def table_csv(sweep: SweepSpec, trials: list[Trial]) -> str:
    """The trials table as CSV: trial, one column per swept parameter, the metric, status, run_id."""
    out = io.StringIO()
    writer = csv.writer(out)
    names = list(sweep.parameters)
    writer.writerow(["trial", *names, sweep.metric, "status", "run_id"])
    for t in trials:
        writer.writerow([t.trial, *(t.parameters.get(n) for n in names), t.metric, t.status, t.run_id or ""])
    return out.getvalue()


# -- running the trials of one step's run ---------------------------------------------------------------------------
class Host(Protocol):
    """What running trials needs from the pipeline runner (``runner.Runner`` is one)."""

    records: tracking.Tracker
    trial_kernels: set[kernels.Kernel]  # the local trials' kernels: the runner kills them on cancel

    @property
    def executor(self) -> executors.LocalExecutor | executors.DaskExecutor: ...

    @property
    def cancelled(self) -> bool: ...

    def check_cancelled(self) -> None:
        """Raise the runner's cancellation when the pipeline run was interrupted."""

    def job(
        self,
        step: Step,
        name: str,
        swept: dict[str, Any],
        inputs: dict[str, tuple[Path, str]],
        outputs: dict[str, Path],
    ) -> execution.Job: ...

    def report(self, step: str, state: str) -> None: ...


class SweepRun:
    """The trials of one sweep step's run, a few at a time on threads of their own (on the step's worker thread).

    ``folder`` holds every trial's outputs until the best one's are copied to the step's outputs; the executor's
    workers write there, so it lives in the workspace, shared like the workspace itself.
    """

    def __init__(self, host: Host, step: Step, run_id: str, inputs: dict[str, tuple[Path, str]], folder: Path) -> None:
        assert step.sweep is not None
        self.host, self.step, self.sweep, self.run_id = host, step, step.sweep, run_id
        self.inputs, self.folder = inputs, folder
        self.trials = [Trial(i + 1, point) for i, point in enumerate(points(step.sweep))]
        self.table: list[dict[str, Any]] | None = None  # the trials table, once every trial has ended

    def run(self) -> str | None:
        """Run the trials, copy the best one's outputs to the step's outputs; returns the error (None: success)."""
        host, sweep, trials = self.host, self.sweep, self.trials
        running: dict[Future[None], Trial] = {}
        launched = 0
        try:
            with ThreadPoolExecutor(sweep.max_parallel, thread_name_prefix=f"mlops-{self.step.name}-trial") as pool:
                while launched < len(trials) or running:
                    stop = host.cancelled or should_stop(sweep, trials)
                    while not stop and launched < len(trials) and len(running) < sweep.max_parallel:
                        trial = trials[launched]
                        running[pool.submit(self._trial, trial)] = trial
                        launched += 1
                    if not running:
                        break
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        running.pop(future)
                        future.result()  # _trial records its own failures
            for trial in trials[launched:]:
                trial.status = "stopped"
            host.check_cancelled()
            self.table = [trial.row() for trial in trials]
            winner = best(sweep, trials)
            host.records.log_trials(self.run_id, sweep, trials, winner)
            if winner is None:
                first = next((t for t in trials if t.error), None)
                return f"all {launched} trials failed" + (f"; trial {first.trial}: {first.error}" if first else "")
            for name, path in self.step.outputs.items():
                cache._replace(self._outputs(winner)[name], path)
            return None
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _outputs(self, trial: Trial) -> dict[str, Path]:
        return {k: self.folder / f"trial-{trial.trial}" / k / p.name for k, p in self.step.outputs.items()}

    def _trial(self, trial: Trial) -> None:
        """One trial, recorded whatever happens: a failure is the trial's, never the sweep's."""
        host, step, sweep = self.host, self.step, self.sweep
        kernel: kernels.Kernel | None = None
        try:
            trial.run_id = host.records.create_trial(step, self.run_id, trial)
            job = host.job(step, f"{step.name}-{trial.trial}", trial.parameters, self.inputs, self._outputs(trial))
            if host.executor.prestarts:
                kernel = kernels.Kernel(job.kernel_name, step.notebook.parent)
                host.trial_kernels.add(kernel)
                host.check_cancelled()
            outcome = host.executor.run(job, kernel)
            host.records.log_outcome(trial.run_id, "notebook", outcome)
            error = outcome.error
            if error is None:
                trial.metric, error = metric_of(sweep, outcome.metrics)
            trial.status, trial.error = ("failed", error) if error else ("succeeded", None)
            if host.cancelled:
                trial.status = "stopped"
            host.records.end_trial(trial, outcome.metrics)
        except Exception as exc:
            trial.status, trial.error = ("stopped" if host.cancelled else "failed"), f"{type(exc).__name__}: {exc}"
            if trial.run_id:
                with contextlib.suppress(Exception):
                    host.records.end_trial(trial, {})
        finally:
            if kernel is not None:
                host.trial_kernels.discard(kernel)
                kernel.shutdown()
        shown = f" ({sweep.metric}={trial.metric:g})" if trial.metric is not None else ""
        host.report(step.name, f"sweeping: trial {trial.trial}/{len(self.trials)} {trial.status}{shown}")
