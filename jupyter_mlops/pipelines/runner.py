"""Running a pipeline: a DAG of papermill steps, each a child MLflow run of the pipeline's run.

The main thread schedules; each step runs on a worker thread that may start the step's kernel while the
upstream steps still run, waits for them, then reuses a cached result or executes the notebook. Progress
events are handed back to the main thread, so that a notebook display is only ever touched from there.
An executor (``executors``) runs the notebooks: here, or as tasks on a Dask cluster; a step with ``sweep:`` runs
one notebook per trial (``sweeps.SweepRun``). What the runs record is ``tracking``'s, written from this process.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops import snapshot
from jupyter_mlops.exceptions import Cancelled, InvalidInput
from jupyter_mlops.pipelines import execution, executors, gates, kernels, steps, sweeps, tracking
from jupyter_mlops.pipelines.records import STEP_STATES, GateResult, PipelineRun, StepResult
from jupyter_mlops.pipelines.tags import (
    EXECUTOR_TAG,
    OUTPUT_KIND_TAG,
    OUTPUT_TAG,
    REGISTERED_TAG,
    REUSED_FROM_TAG,
    TRIALS_ARTIFACT,
)

if TYPE_CHECKING:
    from jupyter_mlops.pipelines.spec import Pipeline, Step
    from jupyter_mlops.workspace import Workspace

Progress = Callable[[str, str], None]

FINAL = tracking.FINAL_STATES  # a step in one of these is done


@dataclass
class _StepState:
    """One step in this run: ``state`` changes under the runner's condition, the rest on the step's worker thread."""

    step: Step
    mode: str  # auto: reuse or execute; execute: always; cache: reuse only; off: not part of this run
    state: str = "pending"  # pending, launched, executing, then one of FINAL
    run_id: str | None = None
    duration_s: float | None = None
    kernel: kernels.Kernel | None = None
    error: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    trials: list[dict[str, Any]] | None = None  # a sweep step's trials table
    registered: str | None = None  # NAME:VERSION registered from its output (by its original run when reused)
    gate: GateResult | None = None


class Runner:
    """One run of one pipeline (build a new Runner per run)."""

    def __init__(
        self,
        ws: Workspace,
        pipeline: Pipeline,
        *,
        only: str | None = None,
        from_step: str | None = None,
        force: bool = False,
        max_parallel: int | None = None,
        progress: Progress | None = None,
        resumed_from: str | None = None,
        executor: str = "local",
        scheduler: str | None = None,
    ) -> None:
        for option, value in (("only", only), ("from", from_step)):
            if value is not None and value not in pipeline.steps:
                raise InvalidInput(
                    f"--{option} {value}: pipeline {pipeline.name!r} has no such step; "
                    f"its steps: {', '.join(pipeline.steps)}.",
                    steps=list(pipeline.steps),
                )
        if only and from_step:
            raise InvalidInput("Pass either --only STEP or --from STEP, not both.")
        if max_parallel is not None and max_parallel < 1:
            raise InvalidInput(f"--max-parallel must be at least 1, not {max_parallel}.")
        if executor not in executors.EXECUTORS:
            raise InvalidInput(
                f"--executor {executor}: unknown executor; choose one of: {', '.join(executors.EXECUTORS)}."
            )
        self.executor_name, self.scheduler = executor, scheduler
        self._executor: executors.LocalExecutor | executors.DaskExecutor = executors.LocalExecutor()
        self.records = tracking.Tracker(ws, pipeline, executor)
        self.resolver = steps.StepResolver(ws, pipeline)
        self.ws = ws
        self.pipeline = pipeline
        self.force = force
        self.max_parallel = max_parallel or os.cpu_count() or 1
        self._max_parallel_given = max_parallel is not None
        self.progress = progress
        self.resumed_from = resumed_from
        self.options = {"only": only, "from": from_step, "force": force}
        selected = {only} if only else pipeline.downstream(from_step) if from_step else set(pipeline.steps)
        needed = set().union(*(pipeline.upstream(s) for s in selected)) - selected
        self.states: dict[str, _StepState] = {}
        for name, step in pipeline.steps.items():
            if name in selected:
                mode = "execute" if (force or only or from_step) else "auto"
            else:
                mode = "cache" if name in needed else "off"
            self.states[name] = _StepState(step, mode)
        self._changed = threading.Condition()
        self._events: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        self._slots = threading.BoundedSemaphore(self.max_parallel)
        self._cancelled = False
        self.trial_kernels: set[kernels.Kernel] = set()  # local trials' kernels, for _cancel

    @property
    def run_id(self) -> str:
        """The pipeline's run ("" until it starts)."""
        return self.records.run_id

    # -- what a sweep's trials use (sweeps.Host) ----------------------------------------------------------------
    @property
    def executor(self) -> executors.LocalExecutor | executors.DaskExecutor:
        return self._executor

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def check_cancelled(self) -> None:
        if self._cancelled:
            raise Cancelled

    def report(self, step: str, state: str) -> None:
        """A progress line for ``step`` that is not a state change (retries, trials), shown on the main thread."""
        self._events.put((step, state))

    # -- the run ------------------------------------------------------------------------------------------------
    def run(self) -> PipelineRun:
        self._executor = executors.create(self.executor_name, self.scheduler)  # before any record: fail fast
        if not self._max_parallel_given and self._executor.slots:  # on a cluster: as many steps as it runs
            self.max_parallel = self._executor.slots
            self._slots = threading.BoundedSemaphore(self.max_parallel)
        try:
            return self._run()
        finally:
            self._executor.close()

    def _run(self) -> PipelineRun:
        from jupyter_mlops.pipelines import history

        history.reconcile_quietly(self.ws)  # whichever process is alive notices the runs of dead runners
        self.resolver.default_env_hash = snapshot.environment().content_hash
        # the steps are on the record from the start, so a runner killed outright still leaves them listed
        initial = {n: "skipped" if s.mode == "off" else "pending" for n, s in self.states.items()}
        self.records.start_parent(self.options, self.resumed_from, self.resolver.default_env_hash, initial)
        pool = ThreadPoolExecutor(max_workers=len(self.states), thread_name_prefix=f"mlops-{self.pipeline.name}")
        try:
            self._schedule(pool)
        except BaseException as exc:
            self._cancel()
            self._finish_parent("KILLED", f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        # kernels still shutting down finish on their threads; the result is already recorded
        pool.shutdown(wait=False)
        failed = [n for n, s in self.states.items() if s.state == "failed"]
        gated = [n for n, s in self.states.items() if s.state == "gated"]
        # a step that failed before it had a run of its own (e.g. a missing input) keeps its reason here
        reasons = [f"{n}: {self.states[n].error}" if self.states[n].error else n for n in failed]
        if failed:
            status, error = "FAILED", f"step(s) failed: {'; '.join(reasons)}"
        elif gated:
            status = "GATED"
            error = "; ".join(f"{n}: {self.states[n].gate.summary()}" for n in gated)  # type: ignore[union-attr]
        else:
            status, error = "FINISHED", None
        self._finish_parent(status, error)
        return self.record(status)

    def _finish_parent(self, status: str, error: str | None) -> None:
        """End the run; a step that never reached a final state (interrupted) is on the record as killed."""
        states = {n: s.state if s.state in FINAL else "killed" for n, s in self.states.items()}
        self.records.finish_parent(states, status, error)

    def record(self, status: str) -> PipelineRun:
        steps = {
            name: StepResult(
                status=s.state if s.state in STEP_STATES else "skipped",
                run_id=s.run_id,
                duration_s=None if s.duration_s is None else round(s.duration_s, 3),
                outputs=dict(s.outputs),
                trials=s.trials,
                gate=s.gate,
            )
            for name, s in self.states.items()
        }
        return PipelineRun(run_id=self.run_id, pipeline=self.pipeline.name, status=status, steps=steps)

    def _schedule(self, pool: ThreadPoolExecutor) -> None:
        futures = []
        with self._changed:
            for s in self.states.values():
                if s.mode == "off":
                    s.state = "skipped"
            while True:
                for name, s in self.states.items():
                    if s.state != "pending":
                        continue
                    deps = [self.states[d] for d in s.step.depends_on]
                    if all(d.state in FINAL for d in deps):
                        prestart = False
                    elif self._may_prestart(s, deps):
                        prestart = True
                    else:
                        continue
                    s.state = "launched"
                    futures.append(pool.submit(self._work, name, prestart))
                self._drain_events()
                if all(s.state in FINAL for s in self.states.values()):
                    break
                self._changed.wait(timeout=0.5)
                for future in futures:  # a bug in a worker must not leave the run waiting forever
                    if future.done() and future.exception() is not None:
                        raise future.exception()  # type: ignore[misc]
        self._drain_events()

    def _may_prestart(self, s: _StepState, deps: list[_StepState]) -> bool:
        """Start this step's kernel now: an upstream step is executing and none failed (it will likely run)."""
        if s.mode not in ("auto", "execute") or s.step.sweep is not None or not self._executor.prestarts:
            return False
        if not any(d.state == "executing" for d in deps):
            return False
        if not all(d.state in ("executing", "succeeded", "reused") for d in deps):
            return False
        warming = sum(1 for x in self.states.values() if x.state == "launched" and x.kernel is not None)
        return warming < self.max_parallel

    def _set(self, name: str, state: str) -> None:
        with self._changed:
            self.states[name].state = state
            self._changed.notify_all()
        shown = "running" if state == "executing" else state
        error = self.states[name].error
        if state == "failed" and error:  # the reason belongs next to the state a person reads
            shown = f"failed ({error[:300]})"
        gate = self.states[name].gate
        if gate is not None and state in ("succeeded", "reused", "gated"):
            shown = f"{state} ({gate.summary()[:300]})"
        self._events.put((name, shown))

    def _drain_events(self) -> None:
        while True:
            try:
                name, state = self._events.get_nowait()
            except queue.Empty:
                return
            if self.progress is not None:
                self.progress(name, state)

    def _cancel(self) -> None:
        with self._changed:
            self._cancelled = True
            self._changed.notify_all()
        with contextlib.suppress(Exception):
            self._executor.cancel()
        for s in self.states.values():
            if s.kernel is not None:
                s.kernel.kill()
        for kernel in list(self.trial_kernels):
            kernel.kill()
        deadline = time.monotonic() + 10
        for s in self.states.values():
            while s.state in ("launched", "executing") and time.monotonic() < deadline:
                time.sleep(0.05)
            if s.run_id and s.state not in STEP_STATES:
                with contextlib.suppress(Exception):
                    self.records.end_step(s.run_id, "killed", "KILLED")

    # -- one step (on a worker thread) --------------------------------------------------------------------------
    def _work(self, name: str, prestart: bool) -> None:
        s = self.states[name]
        kernel: kernels.Kernel | None = None
        try:
            if prestart:
                kernel = self._new_kernel(s)
            with self._changed:
                while not self._cancelled and not all(self.states[d].state in FINAL for d in s.step.depends_on):
                    self._changed.wait()
                if self._cancelled:
                    raise Cancelled
            if any(self.states[d].state not in ("succeeded", "reused") for d in s.step.depends_on):
                self._set(name, "skipped")
                return
            inputs = self.resolver.inputs(s.step)
            key = self.resolver.key(s.step, inputs)
            if s.mode != "execute" and self._reuse(s, key, inputs):
                return
            if s.mode == "cache":
                return
            kernel = self._execute(s, key, inputs, kernel)
        except Cancelled:
            self._set(name, "killed")
        except Exception as exc:  # a step's own failure is recorded, never raised through the scheduler
            s.error = f"{type(exc).__name__}: {exc}"
            if s.run_id:
                with contextlib.suppress(Exception):
                    self.records.end_step(s.run_id, "failed", "FAILED", s.error)
            self._set(name, "killed" if self._cancelled else "failed")
        finally:
            for left in {id(k): k for k in (kernel, s.kernel) if k is not None}.values():
                left.shutdown()
            s.kernel = None

    def _new_kernel(self, s: _StepState) -> kernels.Kernel:
        kernel = s.kernel = kernels.Kernel(self.resolver.kernel_name(s.step), s.step.notebook.parent)
        if self._cancelled:  # _cancel() may have looked for this kernel before it existed
            kernel.kill()
            raise Cancelled
        return kernel

    def _reuse(self, s: _StepState, key: str, inputs: dict[str, tuple[Path, str]]) -> bool:
        step, started = s.step, time.monotonic()
        previous = None if self.force else self.records.reusable(key)
        if previous is None and s.mode == "cache":
            previous = self.records.latest(step.name)
            if previous is None:
                raise InvalidInput(
                    f"Step {step.name!r} has never succeeded, so its outputs cannot be taken from the cache: "
                    f"run the pipeline once without --only/--from, or use --from {step.name}."
                )
        if previous is None:
            return False
        for name, path in step.outputs.items():
            self.records.restore(previous, name, path)
        origin = previous.data.tags.get(REUSED_FROM_TAG) or previous.info.run_id
        tags = {
            REUSED_FROM_TAG: origin,
            **{k: v for k, v in previous.data.tags.items() if k.startswith((OUTPUT_TAG, OUTPUT_KIND_TAG))},
        }
        s.run_id = self._create_child(step, key, inputs, tags, "reused")
        s.outputs = {k: str(p) for k, p in step.outputs.items()}
        s.registered = previous.data.tags.get(REGISTERED_TAG)
        if step.sweep is not None:
            with contextlib.suppress(Exception):
                s.trials = json.loads(self.records.artifact_text(previous.info.run_id, TRIALS_ARTIFACT))
        passed = self._judge(s)
        s.duration_s = time.monotonic() - started
        self.records.end_step(s.run_id, "reused", "FINISHED")
        self._set(step.name, "reused" if passed else "gated")
        return True

    def _execute(
        self, s: _StepState, key: str, inputs: dict[str, tuple[Path, str]], kernel: kernels.Kernel | None
    ) -> kernels.Kernel | None:
        """Run the notebook (with retries); returns the kernel left to shut down."""
        step = s.step
        with self._slots:
            self._set(step.name, "executing")
            s.run_id = self._create_child(step, key, inputs, {EXECUTOR_TAG: self._executor.name}, "running")
            started = time.monotonic()
            error = self._sweep(s, inputs) if step.sweep is not None else None  # a sweep: trials, no retries
            for attempt in range(0 if step.sweep is not None else step.retries + 1):
                if attempt:
                    if kernel is not None:
                        kernel.shutdown()
                    kernel = None
                    self.report(step.name, f"retrying ({attempt}/{step.retries})")
                if kernel is None and self._executor.prestarts:
                    kernel = self._new_kernel(s)
                error = self._papermill(s, kernel, inputs, attempt)
                if self._cancelled:
                    raise Cancelled
                if error is None:
                    break
            s.duration_s = time.monotonic() - started
            if error is not None:
                s.error = error
                self.records.end_step(s.run_id, "failed", "FAILED", error, s.duration_s)
                self._set(step.name, "failed")
                return kernel
            self.records.log_outputs(s.run_id, step)
            if step.register is not None:
                s.registered = self.records.register(s.run_id, step)
            passed = self._judge(s)
            # the step's run stays reusable ("succeeded"): a later run judges its figures again
            self.records.end_step(s.run_id, "succeeded", "FINISHED", None, s.duration_s)
            s.outputs = {k: str(p) for k, p in step.outputs.items()}
            self._set(step.name, "succeeded" if passed else "gated")
        return kernel

    def _judge(self, s: _StepState) -> bool:
        """A step's gate (True without one): its candidate is the version registered upstream in this run."""
        gate = s.step.gate
        if gate is None:
            return True
        assert s.run_id
        candidates = [self.states[n].registered for n in (s.step.name, *sorted(self.pipeline.upstream(s.step.name)))]
        candidate = next((c for c in candidates if c and c.rpartition(":")[0] == gate.model), None)
        s.gate = self.records.call(gates.judge, self.ws, s.step, s.run_id, candidate)
        return s.gate.passed

    def _papermill(
        self, s: _StepState, kernel: kernels.Kernel | None, inputs: dict[str, tuple[Path, str]], attempt: int
    ) -> str | None:
        """One execution of the step's notebook; returns the error (None on success). Keeps every artifact."""
        step = s.step
        outcome = self._executor.run(self.job(step, step.name, {}, inputs, step.outputs), kernel)
        folder = "notebook" if outcome.error is None or attempt == step.retries else f"attempts/{attempt + 1}"
        self.records.log_outcome(s.run_id, folder, outcome)
        return outcome.error

    def job(
        self,
        step: Step,
        name: str,
        swept: dict[str, Any],
        inputs: dict[str, tuple[Path, str]],
        outputs: dict[str, Path],
    ) -> execution.Job:
        return self.resolver.job(step, name, swept, inputs, outputs)

    def _sweep(self, s: _StepState, inputs: dict[str, tuple[Path, str]]) -> str | None:
        """Run a sweep step's trials; returns the error (None: success)."""
        assert s.run_id
        sweep = sweeps.SweepRun(self, s.step, s.run_id, inputs, self.ws.layout.sweep(s.run_id))
        try:
            return sweep.run()
        finally:
            s.trials = sweep.table

    def _create_child(
        self, step: Step, key: str, inputs: dict[str, tuple[Path, str]], extra: dict[str, str], status: str
    ) -> str:
        """The step's run, with its environment and the registered datasets it read."""
        env_hash, datasets = self.resolver.env_hash(step), self.resolver.datasets(step)
        return self.records.create_step(step, key, inputs, extra, status, env_hash, datasets)
