"""The records of release gates: an evaluation (shown as a side-by-side table), approvals, the policy, promotions
and the moves of an alias. Field names are the ``--json`` and REST names."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from jupyter_mlops.records import Record

PENDING, APPROVED, REJECTED = "PendingApproval", "Approved", "Rejected"  # SageMaker's ModelApprovalStatus values
APPROVAL_STATES = (PENDING, APPROVED, REJECTED)
REQUIREMENTS = ("gate", "approval")


@dataclass(frozen=True)
class MetricResult(Record):
    """One metric of an evaluation: both values, the change, its threshold (if any) and whether it passed."""

    baseline: float | None
    candidate: float | None
    change: float | None
    threshold: dict[str, Any] | None = None
    passed: bool | None = None  # None: no threshold on this metric


def metric_table(metrics: dict[str, MetricResult]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a gate's side-by-side table (thresholded metrics first), as text cells."""
    header = ["metric", "baseline", "candidate", "change", "threshold", "result"]
    rows = []
    for name in sorted(metrics, key=lambda m: metrics[m].threshold is None):
        m = metrics[name]
        result = "" if m.passed is None else ("pass" if m.passed else "FAIL")
        rows.append(
            [name, _num(m.baseline), _num(m.candidate), _num(m.change, signed=True), _rule(m.threshold), result]
        )
    return header, rows


@dataclass(frozen=True)
class Evaluation(Record):
    """The verdict of an evaluation gate, recorded as one MLflow run and as tags on the candidate version."""

    model: str
    version: int
    baseline: str | None  # NAME:VERSION, None when there was none
    baseline_alias: str | None
    passed: bool
    metrics: dict[str, MetricResult]
    failures: list[str]
    run_id: str
    model_type: str
    rows: int
    evaluated_by: str
    evaluated_at: datetime

    @property
    def candidate(self) -> str:
        return f"{self.model}:{self.version}"

    def headline(self) -> str:
        against = f"against {self.baseline}" if self.baseline else "with no baseline (absolute thresholds only)"
        if self.baseline and self.baseline_alias:
            against += f" ({self.baseline_alias})"
        return f"{self.candidate} {against} on {self.rows:,} rows: {'PASSED' if self.passed else 'FAILED'}"

    def table(self) -> tuple[list[str], list[list[str]]]:
        """Header and rows of the side-by-side table: thresholded metrics first."""
        return metric_table(self.metrics)

    def __str__(self) -> str:
        header, rows = self.table()
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
        lines = [self.headline()]
        lines.append("  ".join(h.upper().ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
        lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
        lines += [f"  - {f}" for f in self.failures]
        lines.append(f"run {self.run_id}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        header, rows = self.table()
        colour = {"pass": "#1a7f37", "FAIL": "#cf222e"}
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join(
            "<tr>"
            + "".join(
                f'<td style="color:{colour[v]};font-weight:bold">{v}</td>'
                if v in colour
                else f"<td>{html.escape(v)}</td>"
                for v in row
            )
            + "</tr>"
            for row in rows
        )
        failures = "".join(f"<li>{html.escape(f)}</li>" for f in self.failures)
        return (
            f'<table class="mlops-table"><caption>{html.escape(self.headline())}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            + (f"<ul>{failures}</ul>" if failures else "")
            + f"<div>run <code>{html.escape(self.run_id)}</code></div>"
        )


@dataclass(frozen=True)
class Approval(Record):
    """A version's approval state (None: never asked), who asked and why, who decided and what they said."""

    model: str
    version: int
    status: str | None
    requested_by: str | None = None
    requested_at: str | None = None
    reason: str | None = None
    decided_by: str | None = None
    decided_at: str | None = None
    comment: str | None = None


@dataclass(frozen=True)
class ProtectedAlias(Record):
    """One alias of the workspace policy: what a version needs before it may hold the alias."""

    alias: str
    requires: list[str]
    four_eyes: bool
    updated_by: str | None = None
    updated_at: datetime | None = None
    table_columns: ClassVar[tuple[str, ...]] = ("alias", "requires", "four_eyes", "updated_by", "updated_at")


@dataclass(frozen=True)
class Promotion(Record):
    """An alias moved to a version after the policy's checks (``moved`` False: it already pointed there)."""

    model: str
    alias: str
    version: int
    previous_version: int | None
    moved: bool
    promoted_by: str
    reason: str | None
    requires: list[str] = field(default_factory=list)
    gate_run_id: str | None = None
    approved_by: str | None = None


@dataclass(frozen=True)
class AliasMove(Record):
    """One move of an alias from the event log: a promotion (with who and why), a direct set or a removal."""

    seq: int
    time: datetime
    model: str
    alias: str
    version: int | None  # None: the alias was removed
    previous_version: int | None
    via: str  # promote | alias | remove
    by: str | None = None
    reason: str | None = None
    table_columns: ClassVar[tuple[str, ...]] = (
        "time",
        "alias",
        "previous_version",
        "version",
        "via",
        "by",
        "reason",
    )


def _num(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return ""
    if float(value).is_integer() and abs(value) < 1e15:
        text = f"{int(value):+d}" if signed else f"{int(value)}"
    else:
        text = f"{value:+.4g}" if signed else f"{value:.4g}"
    return text


def _rule(threshold: dict[str, Any] | None) -> str:
    if not threshold:
        return ""
    limits = ", ".join(f"{k}={v:g}" for k, v in threshold.items() if k != "greater_is_better")
    return limits + ("" if threshold.get("greater_is_better", True) else " (lower is better)")


__all__ = [
    "APPROVAL_STATES",
    "APPROVED",
    "PENDING",
    "REJECTED",
    "REQUIREMENTS",
    "AliasMove",
    "Approval",
    "Evaluation",
    "MetricResult",
    "Promotion",
    "ProtectedAlias",
]
