"""A step's ``gate:`` at run time: judge the figures of its ``metrics`` output, absolute or against the version of
the model that holds the baseline alias, and record the verdict where promotion reads it.

The candidate is the version an upstream step registered in this run (or, when that step was reused, the version
its original run registered). A passed or failed gate tags the candidate as ``mlops.evaluate`` does (so
``promote`` accepts a version whose pipeline gate passed) and keeps its figures on it, so the next candidate is
compared with the champion's own figures. A candidate that already holds the baseline alias (nothing changed) is
judged on absolute thresholds only: it is not compared with itself.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from jupyter_mlops import _mlflow
from jupyter_mlops.exceptions import InvalidInput, NotFound
from jupyter_mlops.pipelines.execution import read_metrics
from jupyter_mlops.pipelines.records import GateResult
from jupyter_mlops.refs import ModelRef
from jupyter_mlops.release import evaluate as release

if TYPE_CHECKING:
    from jupyter_mlops.pipelines.spec import Gate, Step
    from jupyter_mlops.workspace import Workspace

GATE_ARTIFACT = "gate.json"  # the verdict, on the step's run


def judge(ws: Workspace, step: Step, run_id: str, candidate: str | None) -> GateResult:
    """The gate's verdict on the step's metrics output; recorded on the step's run and on the candidate version."""
    gate = step.gate
    assert gate is not None
    figures, error = read_metrics(Path(step.outputs["metrics"]))
    if error is not None:
        raise InvalidInput(f"Step {step.name!r} has a gate, but {error}.")
    missing = [m for m in gate.rules if m not in figures]
    if missing:
        raise InvalidInput(
            f"The gate of step {step.name!r} names {', '.join(map(repr, missing))}, which its metrics output does "
            f"not hold; it holds: {', '.join(figures) or 'nothing'}.",
            missing=missing,
            produced=list(figures),
        )
    baseline, values, note = _baseline(ws, gate, candidate)
    metrics, failures = release.compare(gate.rules, figures, values)
    result = GateResult(
        passed=not failures,
        candidate=candidate,
        baseline=baseline,
        baseline_alias=gate.baseline if baseline else None,
        metrics=metrics,
        failures=failures,
        note=note,
    )
    _record(ws, run_id, result, figures)
    return result


def _baseline(
    ws: Workspace, gate: Gate, candidate: str | None
) -> tuple[str | None, dict[str, float] | None, str | None]:
    """The baseline version (NAME:VERSION), its figures, and why there is none when there is none."""
    if gate.baseline is None or gate.model is None:
        return None, None, "no baseline asked for: thresholds only"
    try:
        holder = ws.models.get_model(gate.model).aliases.get(gate.baseline)
    except NotFound:
        holder = None
    if holder is None:
        return None, None, f"no version of {gate.model} is {gate.baseline} yet: thresholds only"
    label = f"{gate.model}:{holder}"
    if label == candidate:
        return None, None, f"{candidate} is already {gate.baseline}: thresholds only"
    with _mlflow.translated_errors(f"reading {label}"):
        version = ws.client.get_model_version(gate.model, str(holder))  # with the mlops.* tags listings hide
    values = {
        key[len(release.GATE_METRIC_TAG) :]: float(value)
        for key, value in version.tags.items()
        if key.startswith(release.GATE_METRIC_TAG)
    }
    if version.run_id:  # the figures its training run logged, where no gate kept any
        with _mlflow.translated_errors(f"reading the run of {label}"):
            run = ws.client.get_run(version.run_id)
        values = {**run.data.metrics, **values}
    return label, values, None


def _record(ws: Workspace, run_id: str, result: GateResult, figures: dict[str, float]) -> None:
    from mlflow.entities import RunTag

    tags = [
        RunTag(release.GATE_PASSED_TAG, str(result.passed).lower()),
        RunTag(release.RUN_FAILURES_TAG, " ".join(result.failures)[:5000]),
    ]
    if result.candidate:
        tags.append(RunTag(release.RUN_CANDIDATE_TAG, result.candidate))
    with _mlflow.translated_errors("recording the gate's verdict"):
        ws.client.log_batch(run_id, tags=tags)
        ws.client.log_text(run_id, json.dumps(result.to_dict(), indent=2), GATE_ARTIFACT)
    if result.candidate:
        ref = ModelRef.parse(result.candidate)
        assert ref.version is not None  # the runner names versions NAME:VERSION
        release.tag_version(
            ws,
            ref.name,
            ref.version,
            passed=result.passed,
            run_id=run_id,
            baseline=result.baseline,
            baseline_alias=result.baseline_alias,
            evaluated_at=datetime.now(timezone.utc),
            failures=result.failures,
            metrics=figures,
        )


__all__ = ["GATE_ARTIFACT", "judge"]
