"""The records pipeline verbs return; ``--json`` prints them with these field names."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from jupyter_mlops.records import Record
from jupyter_mlops.release.records import MetricResult

STEP_STATES = ("succeeded", "reused", "failed", "skipped", "gated")


@dataclasses.dataclass(frozen=True)
class GateResult(Record):
    """A step's gate: its verdict on the candidate version (``NAME:VERSION``, None when nothing is registered
    upstream) against the baseline version, per metric as ``mlops.evaluate`` reports it."""

    passed: bool
    candidate: str | None
    baseline: str | None  # NAME:VERSION, None: absolute thresholds only
    baseline_alias: str | None
    metrics: dict[str, MetricResult]
    failures: list[str]
    note: str | None = None  # why there was no baseline, when there is none

    def summary(self) -> str:
        """One line: the verdict and, when it failed, which metric missed by how much."""
        against = f" against {self.baseline} ({self.baseline_alias})" if self.baseline else ""
        if self.passed:
            return f"gate passed{against}"
        return f"gate failed{against}: " + "; ".join(self.failures)


@dataclasses.dataclass(frozen=True)
class StepResult(Record):
    status: str  # one of STEP_STATES
    run_id: str | None  # the step's child run (None when the step was skipped)
    duration_s: float | None
    outputs: dict[str, str]  # output name -> absolute path
    # a sweep step's trials: {"trial", "parameters", "metric", "status", "run_id"} (and "error" when one failed)
    trials: list[dict[str, Any]] | None = None
    gate: GateResult | None = None  # a step with ``gate:`` that ran or was reused

    def to_dict(self) -> dict[str, Any]:
        """Without ``trials`` for a step that is not a sweep, nor ``gate`` for a step without one."""
        data = super().to_dict()
        for key in ("trials", "gate"):
            if getattr(self, key) is None:
                data.pop(key)
        return data


@dataclasses.dataclass(frozen=True)
class PipelineRun(Record):
    run_id: str
    pipeline: str
    status: str  # FINISHED, FAILED, KILLED (the parent run's MLflow status) or GATED (FINISHED, stopped by a gate)
    steps: dict[str, StepResult]

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "steps": {name: step.to_dict() for name, step in self.steps.items()}}

    @property
    def succeeded(self) -> bool:
        return self.status == "FINISHED"

    def summary(self) -> str:
        """One line per step, for a terminal."""
        lines = [f"pipeline {self.pipeline}: {self.status} (run {self.run_id})"]
        for name, step in self.steps.items():
            took = f"{step.duration_s:.2f}s" if step.duration_s is not None else ""
            lines.append(f"  {name:<20} {step.status:<10} {took:>8}  {step.run_id or ''}")
            if step.gate is not None:
                lines.append(f"    {step.gate.summary()}")
            for trial in step.trials or []:
                metric = "" if trial["metric"] is None else f"{trial['metric']:g}"
                shown = ", ".join(f"{k}={v}" for k, v in trial["parameters"].items())
                lines.append(f"    trial {trial['trial']:<3} {trial['status']:<9} {metric:>10}  {shown}")
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class PipelineRunInfo(Record):
    """A past run of a pipeline, as ``pipeline runs NAME`` lists it."""

    run_id: str
    pipeline: str
    version: str
    status: str
    start_time: datetime | None
    duration_s: float | None
    steps: dict[str, str]  # step -> state
    resumed_from: str | None


@dataclasses.dataclass(frozen=True)
class PipelineInfo(Record):
    """A pipeline known to the workspace (it ran at least once)."""

    name: str
    version: str  # the spec hash of its latest run
    spec_path: str
    runs: int
    last_status: str | None
    last_run_id: str | None
    last_run_at: datetime | None
    steps: list[str]
    spec: str | None = None  # the spec text (``show`` only)
