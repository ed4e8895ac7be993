"""Sweeps: the trial points of a step's ``sweep:``, when to stop early, the best trial and the trials table.

Each trial runs the step's notebook with one point on a fresh kernel; the runner records it as a child run of
the step's run. The notebook reports its metric in the step's ``metrics`` output, a JSON object such as
``{"accuracy": 0.93}``: the runner reads it back (from any executor) and logs every number in it on the trial run.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import random
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jupyter_mlops.pipelines.spec import SweepSpec

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
