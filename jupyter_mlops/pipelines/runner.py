"""Running a pipeline: a DAG of papermill steps, each a child MLflow run of the pipeline's run.

The main thread schedules; each step runs on a worker thread that may start the step's kernel while the
upstream steps still run, waits for them, then reuses a cached result or executes the notebook. Progress
events are handed back to the main thread, so that a notebook display is only ever touched from there.
An executor (``executors``) runs the notebooks: here, or as tasks on a Dask cluster; a step with ``sweep:`` runs
one notebook per trial, each a child run of the step's run. Every MLflow record is written from this process.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import queue
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops import _mlflow, snapshot
from jupyter_mlops.exceptions import InvalidInput
from jupyter_mlops.pipelines import cache, execution, executors, kernels, sweeps
from jupyter_mlops.pipelines import notebook as notebooks
from jupyter_mlops.pipelines.records import PipelineRun, StepResult
from jupyter_mlops.registry import current_user

if TYPE_CHECKING:
    from jupyter_mlops.pipelines.spec import Pipeline, Step
    from jupyter_mlops.workspace import Workspace

Progress = Callable[[str, str], None]

KIND_TAG = "mlops.kind"
PIPELINE_RUN_KIND = "pipeline-run"
STEP_RUN_KIND = "pipeline-step"
TRIAL_RUN_KIND = "pipeline-trial"
TRIAL_TAG = "mlops.trial"  # the trial's number in its sweep
TRIAL_PIPELINE_RUN_TAG = "mlops.trial.pipeline_run"  # lets a later look mark the trials of a dead runner KILLED
EXECUTOR_TAG = "mlops.executor"
WORKER_TAG = "mlops.executor.worker"
TRIALS_ARTIFACT = "sweep/trials.json"
VERSION_TAG = "mlops.pipeline.version"
SPEC_PATH_TAG = "mlops.pipeline.spec_path"
PID_TAG = "mlops.pipeline.pid"
HOST_TAG = "mlops.pipeline.host"
PID_START_TAG = "mlops.pipeline.pid_start"  # tells a live process from a new one that reused the PID
RESUMED_TAG = "mlops.pipeline.resumed_from"
STATES_TAG = "mlops.pipeline.steps"
REUSED_FROM_TAG = "mlops.step.reused_from"
ERROR_TAG = "mlops.error"
SPEC_ARTIFACT = "pipeline/pipeline.yaml"
PARAMETERS_ARTIFACT = "pipeline/parameters.json"
FINAL = ("succeeded", "reused", "failed", "skipped", "killed")


def process_start(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot, Linux), or "" where /proc is missing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


class _Cancelled(Exception):
    """The pipeline run was interrupted while this step waited or ran."""


@dataclass
class _StepState:
    step: Step
    mode: str  # auto: reuse or execute; execute: always; cache: reuse only; off: not part of this run
    state: str = "pending"  # pending, launched, executing, then one of FINAL
    run_id: str | None = None
    duration_s: float | None = None
    kernel: kernels.Kernel | None = None
    error: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    trials: list[dict[str, Any]] | None = None  # a sweep step's trials table


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
        self.run_id = ""
        self._experiment_id = ""
        self._changed = threading.Condition()
        self._events: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        self._slots = threading.BoundedSemaphore(self.max_parallel)
        self._client_lock = threading.Lock()
        self._cancelled = False
        self._env_hash = ""
        self._environments: dict[Path, tuple[str, str]] = {}
        self._env_lock = threading.Lock()  # not _client_lock: _create_child reads environments under that one
        self._datasets: dict[tuple[str, str], tuple[str, int]] = {}  # (step, input) -> registered dataset version
        self._git: snapshot.GitState | None = None
        self._trial_kernels: set[kernels.Kernel] = set()  # local trials' kernels, for _cancel

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
        self._start_parent()
        kernels.register_engine()
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
        status = "FAILED" if failed else "FINISHED"
        # a step that failed before it had a run of its own (e.g. a missing input) keeps its reason here
        reasons = [f"{n}: {self.states[n].error}" if self.states[n].error else n for n in failed]
        self._finish_parent(status, f"step(s) failed: {'; '.join(reasons)}" if failed else None)
        return self.record(status)

    def record(self, status: str) -> PipelineRun:
        steps = {
            name: StepResult(
                status="skipped" if s.state not in FINAL[:4] else s.state,
                run_id=s.run_id,
                duration_s=None if s.duration_s is None else round(s.duration_s, 3),
                outputs=dict(s.outputs),
                trials=s.trials,
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
        for kernel in list(self._trial_kernels):
            kernel.kill()
        deadline = time.monotonic() + 10
        for s in self.states.values():
            while s.state in ("launched", "executing") and time.monotonic() < deadline:
                time.sleep(0.05)
            if s.run_id and s.state not in FINAL[:4]:
                with contextlib.suppress(Exception):
                    self._call(self._end_child, s.run_id, "killed", "KILLED")

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
                    raise _Cancelled
            if any(self.states[d].state not in ("succeeded", "reused") for d in s.step.depends_on):
                self._set(name, "skipped")
                return
            inputs = self._inputs(s.step)
            key = self._key(s.step, inputs)
            if s.mode != "execute" and self._reuse(s, key, inputs):
                return
            if s.mode == "cache":
                return
            kernel = self._execute(s, key, inputs, kernel)
        except _Cancelled:
            self._set(name, "killed")
        except Exception as exc:  # a step's own failure is recorded, never raised through the scheduler
            s.error = f"{type(exc).__name__}: {exc}"
            if s.run_id:
                with contextlib.suppress(Exception):
                    self._call(self._end_child, s.run_id, "failed", "FAILED", s.error)
            self._set(name, "killed" if self._cancelled else "failed")
        finally:
            for left in {id(k): k for k in (kernel, s.kernel) if k is not None}.values():
                left.shutdown()
            s.kernel = None

    def _new_kernel(self, s: _StepState) -> kernels.Kernel:
        kernel = s.kernel = kernels.Kernel(self._kernel_name(s.step), s.step.notebook.parent)
        if self._cancelled:  # _cancel() may have looked for this kernel before it existed
            kernel.kill()
            raise _Cancelled
        return kernel

    def _kernel_name(self, step: Step) -> str:
        if step.environment is not None:
            return self._environment(step)[0]
        return notebooks.kernel_name(step.notebook) or "python3"

    def _environment(self, step: Step) -> tuple[str, str]:
        """(kernel name, environment hash) of a step's ``environment:`` spec, built on first use."""
        assert step.environment is not None
        with self._env_lock:
            known = self._environments.get(step.environment)
        if known is not None:
            return known
        try:
            from jupyter_mlops.environments import kernel_for
        except ImportError as exc:
            raise InvalidInput(
                f"Step {step.name!r} sets environment: {step.environment}, but this installation has no "
                "environments support (jupyter_mlops.environments); remove `environment:` to use the default kernel.",
            ) from exc
        kernel = kernel_for(step.environment, workspace=self.ws)
        content = step.environment.read_bytes() if step.environment.is_file() else b""
        digest = hashlib.sha256(kernel.encode() + b"\0" + content).hexdigest()
        with self._env_lock:
            self._environments[step.environment] = (kernel, digest)
        return kernel, digest

    def _inputs(self, step: Step) -> dict[str, tuple[Path, str]]:
        """Input name -> (path, content hash)."""
        found: dict[str, tuple[Path, str]] = {}
        for key, ref in step.inputs.items():
            if ref.dataset is not None:
                name, _, version = ref.dataset.partition(":")
                record = self.ws.datasets.get(name, version or None)  # NotFound names the versions there are
                with self._env_lock:
                    self._datasets[(step.name, key)] = (record.name, record.version)
                path = Path(record.path)
            else:
                path = self.pipeline.steps[ref.step].outputs[ref.output] if ref.step else ref.path
            assert path is not None
            if not path.exists():
                raise InvalidInput(f"Input {key!r} of step {step.name!r} is missing: {path} does not exist.")
            found[key] = (path, cache.content_hash(path))
        return found

    def _key(self, step: Step, inputs: dict[str, tuple[Path, str]]) -> str:
        env_hash = self._environment(step)[1] if step.environment is not None else self._env_hash
        return cache.step_key(
            notebook_hash=notebooks.content_hash(step.notebook),
            kernel=self._kernel_name(step),
            parameters=step.parameters,
            inputs={k: h for k, (_, h) in inputs.items()},
            outputs=list(step.outputs),
            env_hash=env_hash,
            sweep=step.sweep.model_dump(mode="json") if step.sweep is not None else None,
        )

    def _reuse(self, s: _StepState, key: str, inputs: dict[str, tuple[Path, str]]) -> bool:
        step, started = s.step, time.monotonic()
        previous = None if self.force else self._call(cache.find, self.ws.client, self._experiment_id, key)
        if previous is None and s.mode == "cache":
            previous = self._call(cache.latest, self.ws.client, self._experiment_id, step.name)
            if previous is None:
                raise InvalidInput(
                    f"Step {step.name!r} has never succeeded, so its outputs cannot be taken from the cache: "
                    f"run the pipeline once without --only/--from, or use --from {step.name}."
                )
        if previous is None:
            return False
        for name, path in step.outputs.items():
            self._call(cache.restore, self.ws.client, previous, name, path)
        origin = previous.data.tags.get(REUSED_FROM_TAG) or previous.info.run_id
        tags = {
            REUSED_FROM_TAG: origin,
            **{k: v for k, v in previous.data.tags.items() if k.startswith((cache.OUTPUT_TAG, "mlops.output_kind."))},
        }
        s.run_id = self._call(self._create_child, step, key, inputs, tags, "reused")
        s.outputs = {k: str(p) for k, p in step.outputs.items()}
        if step.sweep is not None:
            with contextlib.suppress(Exception):
                s.trials = json.loads(self._call(self._artifact_text, previous.info.run_id, TRIALS_ARTIFACT))
        s.duration_s = time.monotonic() - started
        self._call(self._end_child, s.run_id, "reused", "FINISHED")
        self._set(step.name, "reused")
        return True

    def _execute(
        self, s: _StepState, key: str, inputs: dict[str, tuple[Path, str]], kernel: kernels.Kernel | None
    ) -> kernels.Kernel | None:
        """Run the notebook (with retries); returns the kernel left to shut down."""
        step = s.step
        with self._slots:
            self._set(step.name, "executing")
            s.run_id = self._call(self._create_child, step, key, inputs, {EXECUTOR_TAG: self._executor.name}, "running")
            started = time.monotonic()
            error = self._sweep(s, inputs) if step.sweep is not None else None  # a sweep: trials, no retries
            for attempt in range(0 if step.sweep is not None else step.retries + 1):
                if attempt:
                    if kernel is not None:
                        kernel.shutdown()
                    kernel = None
                    self._events.put((step.name, f"retrying ({attempt}/{step.retries})"))
                if kernel is None and self._executor.prestarts:
                    kernel = self._new_kernel(s)
                error = self._papermill(s, kernel, inputs, attempt)
                if self._cancelled:
                    raise _Cancelled
                if error is None:
                    break
            s.duration_s = time.monotonic() - started
            if error is not None:
                s.error = error
                self._call(self._end_child, s.run_id, "failed", "FAILED", error, s.duration_s)
                self._set(step.name, "failed")
                return kernel
            self._call(self._log_outputs, s)
            if step.register is not None:
                self._register(s)
            self._call(self._end_child, s.run_id, "succeeded", "FINISHED", None, s.duration_s)
            s.outputs = {k: str(p) for k, p in step.outputs.items()}
            self._set(step.name, "succeeded")
        return kernel

    def _papermill(
        self, s: _StepState, kernel: kernels.Kernel | None, inputs: dict[str, tuple[Path, str]], attempt: int
    ) -> str | None:
        """One execution of the step's notebook; returns the error (None on success). Keeps every artifact."""
        step = s.step
        outcome = self._executor.run(self._job(step, step.name, {}, inputs, step.outputs), kernel)
        folder = "notebook" if outcome.error is None or attempt == step.retries else f"attempts/{attempt + 1}"
        self._call(self._log_outcome, s.run_id, folder, outcome)
        return outcome.error

    def _job(
        self,
        step: Step,
        name: str,
        swept: dict[str, Any],
        inputs: dict[str, tuple[Path, str]],
        outputs: dict[str, Path],
    ) -> execution.Job:
        from jupyter_mlops.pipelines.spec import METRICS_OUTPUT

        parameters = {
            **step.parameters,
            **swept,
            **{k: str(p) for k, (p, _) in inputs.items()},
            **{k: str(p) for k, p in outputs.items()},
        }
        return execution.Job(
            name=name,
            notebook=str(step.notebook),
            parameters=parameters,
            kernel_name=self._kernel_name(step),
            outputs={k: str(p) for k, p in outputs.items()},
            folder_outputs=tuple(step.folder_outputs),
            timeout=step.timeout,
            metrics_output=METRICS_OUTPUT if step.sweep is not None else None,
        )

    # -- a sweep (on the step's worker thread; trials on threads of their own) ---------------------------------
    def _sweep(self, s: _StepState, inputs: dict[str, tuple[Path, str]]) -> str | None:
        """Run the trials, copy the best one's outputs to the step's outputs; returns the error (None: success)."""
        step, sweep = s.step, s.step.sweep
        assert sweep is not None and s.run_id
        trials = [sweeps.Trial(i + 1, point) for i, point in enumerate(sweeps.points(sweep))]
        folder = self.ws.root / "sweeps" / s.run_id  # shared with the workers, like the workspace itself
        running: dict[Any, sweeps.Trial] = {}
        launched = 0
        try:
            with ThreadPoolExecutor(sweep.max_parallel, thread_name_prefix=f"mlops-{step.name}-trial") as pool:
                while launched < len(trials) or running:
                    stop = self._cancelled or sweeps.should_stop(sweep, trials)
                    while not stop and launched < len(trials) and len(running) < sweep.max_parallel:
                        trial = trials[launched]
                        running[pool.submit(self._trial, s, trial, len(trials), inputs, folder)] = trial
                        launched += 1
                    if not running:
                        break
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        running.pop(future)
                        future.result()  # _trial records its own failures
            for trial in trials[launched:]:
                trial.status = "stopped"
            if self._cancelled:
                raise _Cancelled
            s.trials = [t.row() for t in trials]
            winner = sweeps.best(sweep, trials)
            self._call(self._log_trials, s, sweep, trials, winner)
            if winner is None:
                first = next((t for t in trials if t.error), None)
                return f"all {launched} trials failed" + (f"; trial {first.trial}: {first.error}" if first else "")
            for name, path in step.outputs.items():
                cache._replace(self._trial_outputs(step, folder, winner)[name], path)
            return None
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _trial_outputs(self, step: Step, folder: Path, trial: sweeps.Trial) -> dict[str, Path]:
        return {k: folder / f"trial-{trial.trial}" / k / p.name for k, p in step.outputs.items()}

    def _trial(
        self, s: _StepState, trial: sweeps.Trial, count: int, inputs: dict[str, tuple[Path, str]], folder: Path
    ) -> None:
        step, sweep = s.step, s.step.sweep
        assert sweep is not None
        kernel: kernels.Kernel | None = None
        try:
            trial.run_id = self._call(self._create_trial, s, trial)
            job = self._job(
                step, f"{step.name}-{trial.trial}", trial.parameters, inputs, self._trial_outputs(step, folder, trial)
            )
            if self._executor.prestarts:
                kernel = kernels.Kernel(job.kernel_name, step.notebook.parent)
                self._trial_kernels.add(kernel)
                if self._cancelled:
                    raise _Cancelled
            outcome = self._executor.run(job, kernel)
            self._call(self._log_outcome, trial.run_id, "notebook", outcome)
            error = outcome.error
            if error is None:
                trial.metric, error = sweeps.metric_of(sweep, outcome.metrics)
            trial.status, trial.error = ("failed", error) if error else ("succeeded", None)
            if self._cancelled:
                trial.status = "stopped"
            self._call(self._end_trial, trial, outcome.metrics)
        except Exception as exc:
            trial.status, trial.error = ("stopped" if self._cancelled else "failed"), f"{type(exc).__name__}: {exc}"
            if trial.run_id:
                with contextlib.suppress(Exception):
                    self._call(self._end_trial, trial, {})
        finally:
            if kernel is not None:
                self._trial_kernels.discard(kernel)
                kernel.shutdown()
        shown = f" ({sweep.metric}={trial.metric:g})" if trial.metric is not None else ""
        self._events.put((step.name, f"sweeping: trial {trial.trial}/{count} {trial.status}{shown}"))

    def _create_trial(self, s: _StepState, trial: sweeps.Trial) -> str:
        tags = {
            "mlflow.parentRunId": s.run_id,
            "mlflow.user": current_user(),
            "mlflow.source.type": "NOTEBOOK",
            "mlflow.source.name": str(s.step.notebook),
            KIND_TAG: TRIAL_RUN_KIND,
            TRIAL_TAG: str(trial.trial),
            TRIAL_PIPELINE_RUN_TAG: self.run_id,
            cache.PIPELINE_TAG: self.pipeline.name,
            EXECUTOR_TAG: self._executor.name,
        }
        run = self.ws.client.create_run(self._experiment_id, run_name=f"{s.step.name}-trial-{trial.trial}", tags=tags)
        for key, value in {**s.step.parameters, **trial.parameters}.items():
            self.ws.client.log_param(run.info.run_id, key, str(value)[:6000])
        return run.info.run_id

    def _end_trial(self, trial: sweeps.Trial, metrics: dict[str, float]) -> None:
        client = self.ws.client
        assert trial.run_id
        for key, value in metrics.items():
            client.log_metric(trial.run_id, key, value)
        if trial.error:
            client.set_tag(trial.run_id, ERROR_TAG, trial.error[:5000])
        status = {"succeeded": "FINISHED", "failed": "FAILED"}.get(trial.status, "KILLED")
        _mlflow.terminate_run(client, trial.run_id, status)

    def _log_trials(self, s: _StepState, sweep: Any, trials: list[sweeps.Trial], winner: sweeps.Trial | None) -> None:
        client = self.ws.client
        assert s.run_id
        client.log_text(s.run_id, json.dumps([t.row() for t in trials], indent=1, default=str), TRIALS_ARTIFACT)
        client.log_text(s.run_id, sweeps.table_csv(sweep, trials), "sweep/trials.csv")
        if winner is not None:
            assert winner.metric is not None
            client.log_metric(s.run_id, sweep.metric, winner.metric)
            client.set_tag(s.run_id, "mlops.sweep.best_trial", str(winner.trial))
            client.set_tag(s.run_id, "mlops.sweep.best_run_id", winner.run_id or "")
            for key, value in winner.parameters.items():
                client.log_param(s.run_id, f"best.{key}", str(value)[:6000])

    def _artifact_text(self, run_id: str, path: str) -> str:
        with tempfile.TemporaryDirectory(prefix="mlops-artifact-") as tmp, cache._no_progress_bar():
            return Path(self.ws.client.download_artifacts(run_id, path, tmp)).read_text()

    def _register(self, s: _StepState) -> None:
        register = s.step.register
        assert register is not None and s.run_id
        output = register.output or next(iter(s.step.outputs))
        # public tags (the registry hides mlops.*): where the version came from shows in every listing
        tags = {"pipeline": self.pipeline.name, "pipeline_run": self.run_id, "pipeline_step": s.step.name}
        tags.update(register.tags)
        uri = f"runs:/{s.run_id}/{cache.OUTPUTS_ARTIFACT}/{output}"
        version = self._call(functools.partial(self.ws.models.register, uri, register.name, tags=tags))
        self._call(self.ws.client.set_tag, s.run_id, "mlops.registered", f"{version.name}:{version.version}")

    # -- MLflow records -----------------------------------------------------------------------------------------
    def _call(self, func: Callable[..., Any], *args: Any) -> Any:
        """One MLflow call at a time: the runner's threads share one client and one SQLite store."""
        with self._client_lock, _mlflow.translated_errors(f"pipeline {self.pipeline.name}"):
            return func(*args)

    def _start_parent(self) -> None:
        client = self.ws.client
        self._env_hash = snapshot.environment().content_hash
        self._git = snapshot.git_state(self.pipeline.folder)
        with _mlflow.translated_errors(f"starting pipeline {self.pipeline.name}"):
            self._experiment_id = self.ws.experiment_id(self.pipeline.name)
            client.set_experiment_tag(self._experiment_id, KIND_TAG, "pipeline")
            tags = {
                KIND_TAG: PIPELINE_RUN_KIND,
                cache.PIPELINE_TAG: self.pipeline.name,
                VERSION_TAG: self.pipeline.version,
                SPEC_PATH_TAG: str(self.pipeline.path),
                PID_TAG: str(os.getpid()),
                PID_START_TAG: process_start(os.getpid()),
                HOST_TAG: socket.gethostname(),
                "mlflow.user": current_user(),
                "mlflow.source.type": "PROJECT",
                "mlflow.source.name": str(self.pipeline.path),
                "mlops.env_hash": self._env_hash,
                **{f"mlops.pipeline.option.{k}": str(v) for k, v in self.options.items() if v},
            }
            if self.resumed_from:
                tags[RESUMED_TAG] = self.resumed_from
            tags.update(self._git_tags())
            run = client.create_run(self._experiment_id, run_name=self.pipeline.name, tags=tags)
            self.run_id = run.info.run_id
            client.log_text(self.run_id, self.pipeline.text, SPEC_ARTIFACT)
            client.log_text(self.run_id, json.dumps(self.pipeline.parameters, default=str), PARAMETERS_ARTIFACT)
            for key, value in self.pipeline.parameters.items():
                client.log_param(self.run_id, key, str(value)[:6000])

    def _git_tags(self) -> dict[str, str]:
        if self._git is None:
            return {}
        return {"mlflow.source.git.commit": self._git.commit, "mlops.git_dirty": str(bool(self._git.diff)).lower()}

    def _finish_parent(self, status: str, error: str | None) -> None:
        states = {n: s.state for n, s in self.states.items()}
        with contextlib.suppress(Exception), self._client_lock:
            self.ws.client.set_tag(self.run_id, STATES_TAG, json.dumps(states))
            if error:
                self.ws.client.set_tag(self.run_id, ERROR_TAG, error[:5000])
            _mlflow.terminate_run(self.ws.client, self.run_id, status)

    def _create_child(
        self, step: Step, key: str, inputs: dict[str, tuple[Path, str]], extra: dict[str, str], status: str
    ) -> str:
        tags = {
            "mlflow.parentRunId": self.run_id,
            "mlflow.user": current_user(),
            "mlflow.source.type": "NOTEBOOK",
            "mlflow.source.name": str(step.notebook),
            KIND_TAG: STEP_RUN_KIND,
            cache.PIPELINE_TAG: self.pipeline.name,
            cache.STEP_TAG: step.name,
            cache.KEY_TAG: key,
            cache.STATUS_TAG: status,
            "mlops.env_hash": self._environment(step)[1] if step.environment is not None else self._env_hash,
            "mlops.notebook_hash": notebooks.content_hash(step.notebook),
            **{f"{cache.INPUT_TAG}{k}": h for k, (_, h) in inputs.items()},
            **{f"mlops.input_path.{k}": str(p) for k, (p, _) in inputs.items()},
            **{f"mlops.output_path.{k}": str(p) for k, p in step.outputs.items()},
            **self._git_tags(),
            **extra,
        }
        run = self.ws.client.create_run(self._experiment_id, run_name=step.name, tags=tags)
        for key_, value in step.parameters.items():
            self.ws.client.log_param(run.info.run_id, key_, str(value)[:6000])
        self._record_dataset_usage(step, run.info.run_id)
        return run.info.run_id

    def _record_dataset_usage(self, step: Step, run_id: str) -> None:
        from jupyter_mlops.store.datasets import DatasetUsageRecord

        with self._env_lock:
            used = [(key, ref) for (name, key), ref in self._datasets.items() if name == step.name]
        if used:
            with self.ws.store.session() as session:
                for key, (dataset, version) in used:
                    session.add(
                        DatasetUsageRecord(name=dataset, version=version, run_id=run_id, context=f"input:{key}")
                    )

    def _end_child(
        self, run_id: str, state: str, status: str, error: str | None = None, duration: float | None = None
    ) -> None:
        client = self.ws.client
        client.set_tag(run_id, cache.STATUS_TAG, state)
        if error:
            client.set_tag(run_id, ERROR_TAG, error[:5000])
        if duration is not None:
            client.log_metric(run_id, "duration_s", duration)
        _mlflow.terminate_run(client, run_id, status)

    def _log_outcome(self, run_id: str | None, folder: str, outcome: execution.Outcome) -> None:
        """The executed notebook and logs (written where the notebook ran) as artifacts, and where it ran."""
        with tempfile.TemporaryDirectory(prefix="mlops-outcome-") as tmp:
            files = []
            for name, content in outcome.files.items():
                (Path(tmp) / name).write_bytes(content)
                files.append(Path(tmp) / name)
            self._log_files(run_id, folder, files)
        if self._executor.name != "local":
            self.ws.client.set_tag(run_id, WORKER_TAG, outcome.where)

    def _log_files(self, run_id: str | None, folder: str, files: list[Path]) -> None:
        for file in files:
            name = f"logs/{file.name}" if file.suffix == ".txt" else f"{folder}/{file.name}"
            self.ws.client.log_artifact(run_id, str(file), str(Path(name).parent))

    def _log_outputs(self, s: _StepState) -> None:
        client = self.ws.client
        for name, path in s.step.outputs.items():
            kind = "folder" if path.is_dir() else "file"
            client.set_tag(s.run_id, f"{cache.OUTPUT_TAG}{name}", cache.content_hash(path))
            client.set_tag(s.run_id, f"mlops.output_kind.{name}", kind)
            target = f"{cache.OUTPUTS_ARTIFACT}/{name}"
            if kind == "folder":
                client.log_artifacts(s.run_id, str(path), target)
            else:
                client.log_artifact(s.run_id, str(path), target)
