"""``jupyter mlops pipeline …``: run, resume, list, show, runs, clone.

Step progress goes to stderr, one line per state change, so that stdout carries only the result (JSON with
``--json``). The exit code is 1 when the pipeline did not succeed.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from jupyter_mlops.cli.core import pairs, result
from jupyter_mlops.exceptions import Interrupted

if TYPE_CHECKING:
    from jupyter_mlops.cli.core import Commands
    from jupyter_mlops.pipelines.records import PipelineRun
    from jupyter_mlops.render import Result
    from jupyter_mlops.workspace import Workspace


def print_progress(step: str, state: str) -> None:
    print(f"[pipeline] {step}: {state}", file=sys.stderr, flush=True)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops a run like Ctrl-C does, so the run is marked KILLED rather than left RUNNING."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt("SIGTERM")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def interrupted() -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt as exc:
        raise Interrupted(
            "the pipeline run was interrupted and is marked KILLED; "
            "continue it with: jupyter mlops pipeline resume RUN_ID (see: jupyter mlops pipeline runs NAME)"
        ) from exc


def _outcome(record: PipelineRun) -> Result:
    return result(record.to_dict(), record.summary(), exit_code=0 if record.succeeded else 1)


def pipeline_run(ws: Workspace, a: argparse.Namespace) -> Result:
    import yaml

    from jupyter_mlops import pipelines

    parameters = {k: yaml.safe_load(v) if v else v for k, v in pairs(a.param, "parameter").items()}
    with sigterm_as_interrupt(), interrupted():
        record = pipelines.run(
            a.spec,
            parameters=parameters,
            only=a.only,
            from_step=a.from_step,
            force=a.force,
            max_parallel=a.max_parallel,
            executor=a.executor,
            scheduler=a.scheduler,
            workspace=ws,
            progress=print_progress,
        )
    return _outcome(record)


def pipeline_resume(ws: Workspace, a: argparse.Namespace) -> Result:
    from jupyter_mlops import pipelines

    with sigterm_as_interrupt(), interrupted():
        record = pipelines.resume(
            a.run_id,
            max_parallel=a.max_parallel,
            executor=a.executor,
            scheduler=a.scheduler,
            workspace=ws,
            progress=print_progress,
        )
    return _outcome(record)


def pipeline_list(ws: Workspace, a: argparse.Namespace) -> Result:
    from jupyter_mlops import pipelines

    infos = pipelines.list_pipelines(workspace=ws)
    lines = [f"{'NAME':<24} {'VERSION':<12} {'RUNS':>5}  {'LAST STATUS':<11} LAST RUN"]
    lines += [f"{i.name:<24} {i.version:<12} {i.runs:>5}  {i.last_status or '':<11} {i.last_run_id}" for i in infos]
    return result([i.to_dict() for i in infos], "\n".join(lines) if infos else "(no pipelines have run yet)")


def pipeline_show(ws: Workspace, a: argparse.Namespace) -> Result:
    from jupyter_mlops import pipelines

    info = pipelines.show(a.name, workspace=ws)
    text = (
        f"pipeline {info.name} version {info.version} ({info.runs} runs, last {info.last_status}: "
        f"{info.last_run_id})\nspec: {info.spec_path}\n\n{info.spec}"
    )
    return result(info.to_dict(), text)


def pipeline_runs(ws: Workspace, a: argparse.Namespace) -> Result:
    from jupyter_mlops import pipelines

    found = pipelines.runs(a.name, max_results=a.max, workspace=ws)
    lines = [f"{'RUN ID':<33} {'STATUS':<9} {'VERSION':<12} {'SECONDS':>8}  STEPS"]
    for run in found:
        seconds = f"{run.duration_s:.1f}" if run.duration_s is not None else ""
        steps = ", ".join(f"{k}={v}" for k, v in run.steps.items())
        lines.append(f"{run.run_id:<33} {run.status:<9} {run.version:<12} {seconds:>8}  {steps}")
    return result([r.to_dict() for r in found], "\n".join(lines) if found else "(no runs)")


def pipeline_clone(ws: Workspace, a: argparse.Namespace) -> Result:
    from jupyter_mlops import pipelines

    path = pipelines.clone(a.name, a.new_name, a.dest, workspace=ws)
    return result({"pipeline": a.new_name, "spec": str(path)}, f"Cloned {a.name} as {a.new_name}: {path}")


def _executor_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--executor",
        choices=("local", "dask"),
        default="local",
        help="where notebooks execute: here (default) or on a Dask cluster (needs --scheduler)",
    )
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="the Dask scheduler's address (--executor dask)")


def add_commands(commands: Commands) -> None:
    group = commands.group("pipeline", "notebook pipelines (papermill steps with reuse)")
    p = commands.command(group, "run", pipeline_run, "run a pipeline.yaml (reusing unchanged steps)")
    p.add_argument("spec", help="the pipeline.yaml file")
    p.add_argument("-p", "--param", action="append", metavar="KEY=VALUE", help="override a pipeline parameter")
    p.add_argument("--only", metavar="STEP", help="execute this step only (inputs from earlier runs)")
    p.add_argument("--from", dest="from_step", metavar="STEP", help="execute this step and everything downstream")
    p.add_argument("--force", action="store_true", help="execute every step, reusing nothing")
    p.add_argument(
        "--max-parallel",
        type=int,
        metavar="N",
        help="at most N steps at once (default: CPU count, or the Dask cluster's threads)",
    )
    _executor_arguments(p)
    p = commands.command(group, "resume", pipeline_resume, "re-run a failed run, reusing the steps that succeeded")
    p.add_argument("run_id")
    p.add_argument("--max-parallel", type=int, metavar="N")
    _executor_arguments(p)
    commands.command(group, "list", pipeline_list, "the pipelines that ran in this workspace")
    p = commands.command(group, "show", pipeline_show, "a pipeline's latest version and spec")
    p.add_argument("name")
    p = commands.command(group, "runs", pipeline_runs, "the runs of a pipeline, newest first")
    p.add_argument("name")
    p.add_argument("--max", type=int, default=50, help="at most this many runs (default 50)")
    p = commands.command(group, "clone", pipeline_clone, "copy a pipeline's spec and notebooks into a new folder")
    p.add_argument("name")
    p.add_argument("new_name")
    p.add_argument("dest")
