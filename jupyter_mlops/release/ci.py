"""``jupyter mlops ci run``: what a CI job does after a push (or when a new version is registered).

Run the pipeline (every unchanged step is reused), take the verdict of its gate step (or, given ``model=``, gate
that version: ``mlops.evaluate`` against the alias when ``data`` is given, else the verdict it already carries),
then release as the policy allows: promote when nothing more is required, else ask for an approval; a candidate
that already holds the alias has nothing to release. A markdown summary of the comparison goes to the CI job page
(``$GITHUB_STEP_SUMMARY`` on GitHub, a file elsewhere). The outcome's ``passed`` is the command's exit code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops import snapshot
from jupyter_mlops.exceptions import InvalidInput
from jupyter_mlops.records import Record
from jupyter_mlops.refs import ModelRef
from jupyter_mlops.release.records import APPROVED, PENDING, MetricResult, metric_table

if TYPE_CHECKING:
    from jupyter_mlops.pipelines.runner import Progress
    from jupyter_mlops.workspace import Workspace

OUTCOMES = ("promoted", "approval_requested", "awaiting_approval", "unchanged", "gated", "failed")


@dataclass(frozen=True)
class CiOutcome(Record):
    """What a CI run did: ``outcome`` is one of OUTCOMES; ``passed`` False (gated or failed) fails the job."""

    outcome: str
    passed: bool
    message: str
    candidate: str | None
    baseline: str | None
    alias: str
    metrics: dict[str, MetricResult]
    failures: list[str]
    pipeline_run_id: str | None = None
    gate_run_id: str | None = None
    commit: str | None = None
    summary_path: str | None = None

    def markdown(self) -> str:
        """The job page's summary: the verdict, the side-by-side table, and what happens next."""
        mark = "✅" if self.passed else "❌"
        lines = [f"## {mark} jupyter-mlops: {self.message}", ""]
        if self.metrics:
            header, rows = metric_table(self.metrics)
            lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(cell or " " for cell in row) + " |" for row in rows]
            lines.append("")
        lines += [f"- {failure}" for failure in self.failures]
        facts = [
            ("candidate", self.candidate),
            ("baseline", f"{self.baseline} ({self.alias})" if self.baseline else f"none holds {self.alias}"),
            ("pipeline run", self.pipeline_run_id),
            ("gate run", self.gate_run_id),
            ("commit", self.commit[:12] if self.commit else None),
        ]
        lines += ["", " · ".join(f"{k}: `{v}`" for k, v in facts if v)]
        return "\n".join(lines).strip() + "\n"


def run(
    ws: Workspace,
    spec_path: str | os.PathLike[str] | None = None,
    *,
    model: str | None = None,
    data: Any = None,
    targets: str = "label",
    thresholds: dict[str, Any] | None = None,
    alias: str = "champion",
    parameters: dict[str, Any] | None = None,
    summary: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> CiOutcome:
    """Gate a candidate and release it as far as the policy allows; see the module's docstring."""
    if (spec_path is None) == (model is None):
        raise InvalidInput("Pass the pipeline spec to run (ci run PIPELINE.yaml) or a version (--model NAME:VERSION).")
    commit = _commit(Path(spec_path).parent if spec_path is not None else Path.cwd())
    if spec_path is not None:
        gated = _from_pipeline(ws, Path(spec_path), parameters, progress, alias)
    else:
        assert model is not None
        gated = _from_version(ws, model, data, targets, thresholds, alias)
    outcome = gated if not gated.passed else _release(ws, gated, alias, commit)
    outcome = _with(outcome, commit=commit)
    path = Path(summary) if summary else _default_summary()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:  # GitHub's step summary is appended to
            handle.write(outcome.markdown())
        outcome = _with(outcome, summary_path=str(path))
    return outcome


def _from_pipeline(
    ws: Workspace, spec_path: Path, parameters: dict[str, Any] | None, progress: Progress | None, alias: str
) -> CiOutcome:
    pipeline = ws.pipelines.validate(spec_path, parameters=parameters)
    gates = [s for s in pipeline.steps.values() if s.gate is not None]
    if not gates:
        raise InvalidInput(
            f"{spec_path}: no step has a `gate:`, so CI has no verdict to act on: add one to the step that writes "
            "the metrics, e.g. gate: {thresholds: {accuracy: {min_absolute_change: 0}}}.",
            path=str(spec_path),
        )
    if any(s.gate.baseline not in (None, alias) for s in gates):  # type: ignore[union-attr]
        raise InvalidInput(f"{spec_path}: the gates compare with another alias than --alias {alias}.")
    record = ws.pipelines.run(spec_path, parameters=parameters, progress=progress)
    step = next((s for s in gates if record.steps[s.name].gate is not None), gates[0])
    verdict = record.steps[step.name].gate
    base = {"alias": alias, "pipeline_run_id": record.run_id, "gate_run_id": record.steps[step.name].run_id}
    if record.status in ("FAILED", "KILLED") or verdict is None:
        failed = [n for n, s in record.steps.items() if s.status == "failed"]
        return CiOutcome(
            outcome="failed",
            passed=False,
            message=f"pipeline {record.pipeline} {record.status}: step(s) failed: {', '.join(failed) or step.name}",
            candidate=None,
            baseline=None,
            metrics={},
            failures=[],
            **base,
        )
    if verdict.candidate is None:
        raise InvalidInput(f"The gate of step {step.name!r} has no candidate: register a model in an upstream step.")
    return CiOutcome(
        outcome="gated" if not verdict.passed else "passed",
        passed=verdict.passed,
        message=f"{verdict.candidate} {verdict.summary()}",
        candidate=verdict.candidate,
        baseline=verdict.baseline,
        metrics=verdict.metrics,
        failures=verdict.failures,
        **base,
    )


def _from_version(
    ws: Workspace, model: str, data: Any, targets: str, thresholds: dict[str, Any] | None, alias: str
) -> CiOutcome:
    ref = ModelRef.parse(model)
    version = ws.models.get(ref.name, ref.selector)
    label = f"{version.name}:{version.version}"
    if data is not None:
        holder = ws.models.get_model(version.name).aliases.get(alias)
        baseline = None if holder in (None, version.version) else alias
        evaluation = ws.release.evaluate(label, data, baseline=baseline, targets=targets, thresholds=thresholds)
        return CiOutcome(
            outcome="passed" if evaluation.passed else "gated",
            passed=evaluation.passed,
            message=evaluation.headline(),
            candidate=label,
            baseline=evaluation.baseline,
            alias=alias,
            metrics=evaluation.metrics,
            failures=evaluation.failures,
            gate_run_id=evaluation.run_id,
        )
    from jupyter_mlops.release.evaluate import GATE_BASELINE_TAG, GATE_PASSED_TAG, GATE_RUN_TAG

    tags = ws.client.get_model_version(version.name, str(version.version)).tags
    if GATE_PASSED_TAG not in tags:
        raise InvalidInput(
            f"{label} has no gate verdict yet: pass --data FILE (and --target COLUMN) to evaluate it against "
            f"the {alias}, or run the pipeline whose gate judges it."
        )
    passed = tags[GATE_PASSED_TAG] == "true"
    baseline = None if tags.get(GATE_BASELINE_TAG) in (None, "none") else tags[GATE_BASELINE_TAG]
    return CiOutcome(
        outcome="passed" if passed else "gated",
        passed=passed,
        message=f"{label} {'passed' if passed else 'failed'} its gate (run {tags.get(GATE_RUN_TAG)})",
        candidate=label,
        baseline=baseline,
        alias=alias,
        metrics={},
        failures=[],
        gate_run_id=tags.get(GATE_RUN_TAG),
    )


def _release(ws: Workspace, gated: CiOutcome, alias: str, commit: str | None) -> CiOutcome:
    """Promote when the policy asks nothing more; else ask for (or wait on) an approval."""
    assert gated.candidate is not None
    ref = ModelRef.parse(gated.candidate)
    name, version = ref.name, int(ref.version or 0)
    if ws.models.get_model(name).aliases.get(alias) == version:
        return _with(gated, outcome="unchanged", message=f"{gated.candidate} is already {alias}: nothing to release")
    rule = next((r for r in ws.release.policy() if r.alias == alias), None)
    status = ws.release.approval(name, version).status
    at = f" at commit {commit[:12]}" if commit else ""
    if rule is None or "approval" not in rule.requires or status == APPROVED:
        ws.release.promote(name, version, alias, reason=f"ci: gate passed{at}")
        return _with(gated, outcome="promoted", message=f"{gated.candidate} passed its gate and is now {alias}")
    if status == PENDING:
        return _with(gated, outcome="awaiting_approval", message=f"{gated.candidate} passed; awaiting approval")
    against = f" against {gated.baseline}" if gated.baseline else ""
    ws.release.request_approval(name, version, reason=f"ci: gate passed{against}{at}")
    return _with(
        gated,
        outcome="approval_requested",
        message=f"{gated.candidate} passed its gate; approval requested "
        f"(jupyter mlops models approve {name} {version}, then models promote {name} {version} --alias {alias})",
    )


def _with(record: CiOutcome, **changes: Any) -> CiOutcome:
    from dataclasses import replace

    return replace(record, **changes)


def _commit(folder: Path) -> str | None:
    state = snapshot.git_state(folder.resolve())
    return None if state is None else state.commit


def _default_summary() -> Path | None:
    """Where the CI system shows a job's summary: GitHub's step summary file; else none unless asked."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    return Path(target) if target else None


__all__ = ["OUTCOMES", "CiOutcome", "run"]
