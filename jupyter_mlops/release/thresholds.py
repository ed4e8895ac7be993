"""Metric thresholds with MLflow's ``MetricThreshold`` semantics, and the rule that applies them.

The comparison is MLflow's own (``mlflow.models.evaluation.validation._validate``), rewritten so that it can say
per metric what it compared and why it failed. Two differences, both on purpose:

- ``min_absolute_change=0`` is allowed (MLflow asks for a positive number): "at least as good as the baseline",
  the default gate.
- With no baseline (none asked for, or no version holds the alias) the change rules are skipped, not failed:
  only ``threshold`` applies. MLflow fails them as "missing from the baseline".
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from jupyter_mlops.exceptions import InvalidInput

# Which way is better for the metrics MLflow's default evaluator produces (classifier and regressor).
GREATER_IS_BETTER = {
    "accuracy_score": True,
    "recall_score": True,
    "precision_score": True,
    "f1_score": True,
    "f1_score_micro": True,
    "f1_score_macro": True,
    "roc_auc": True,
    "precision_recall_auc": True,
    "r2_score": True,
    "score": True,
    "true_positives": True,
    "true_negatives": True,
    "example_count": True,
    "log_loss": False,
    "false_positives": False,
    "false_negatives": False,
    "mean_absolute_error": False,
    "mean_squared_error": False,
    "root_mean_squared_error": False,
    "max_error": False,
    "mean_absolute_percentage_error": False,
    # the short names notebooks write into a pipeline step's metrics output
    "accuracy": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "auc": True,
    "r2": True,
    "loss": False,
    "mae": False,
    "mse": False,
    "rmse": False,
}
# What MLflow's default evaluator can produce per model type (binary and multiclass classifiers differ).
METRICS = {
    "classifier": (
        "accuracy_score",
        "recall_score",
        "precision_score",
        "f1_score",
        "f1_score_micro",
        "f1_score_macro",
        "log_loss",
        "roc_auc",
        "precision_recall_auc",
        "true_negatives",
        "false_positives",
        "false_negatives",
        "true_positives",
        "example_count",
        "score",
    ),
    "regressor": (
        "mean_absolute_error",
        "mean_squared_error",
        "root_mean_squared_error",
        "max_error",
        "mean_absolute_percentage_error",
        "r2_score",
        "sum_on_target",
        "mean_on_target",
        "example_count",
        "score",
    ),
}
OPTIONS = ("threshold", "min_absolute_change", "min_relative_change", "greater_is_better")
DEFAULT_THRESHOLDS: dict[str, dict[str, Any]] = {"accuracy_score": {"min_absolute_change": 0.0}}
RELATIVE_EPSILON = 1e-10  # MLflow's fallback when the baseline value is 0


@dataclass(frozen=True)
class Threshold:
    """What one metric must meet; at least one of the three limits is set."""

    metric: str
    greater_is_better: bool
    threshold: float | None = None
    min_absolute_change: float | None = None
    min_relative_change: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in OPTIONS if getattr(self, k) is not None}


@dataclass(frozen=True)
class Outcome:
    """One metric's verdict: ``passed`` and, when it failed, MLflow-style sentences saying why."""

    passed: bool
    failures: tuple[str, ...] = ()
    compared: bool = False  # a change rule was applied against the baseline


def parse_thresholds(thresholds: Mapping[str, Any] | None) -> dict[str, Threshold]:
    """``{"accuracy_score": {"min_absolute_change": 0}}``, MLflow ``MetricThreshold`` objects or ``Threshold``s."""
    if thresholds is None:
        thresholds = DEFAULT_THRESHOLDS
    if not isinstance(thresholds, Mapping):
        raise InvalidInput(
            'thresholds is a dict of metric name to its limits, e.g. {"accuracy_score": {"min_absolute_change": 0.0}}.'
        )
    return {str(metric): _one(str(metric), spec) for metric, spec in thresholds.items()}


def parse_threshold_option(text: str) -> tuple[str, dict[str, Any]]:
    """The CLI's ``METRIC:OPTION=VALUE[,OPTION=VALUE]`` (``f1_score:threshold=0.8,min_relative_change=0.01``)."""
    metric, sep, rest = text.partition(":")
    if not sep or not metric.strip() or not rest.strip():
        raise InvalidInput(
            f"Cannot read the threshold {text!r}: write METRIC:OPTION=VALUE[,OPTION=VALUE] "
            f"(options: {', '.join(OPTIONS)}), e.g. accuracy_score:min_absolute_change=0."
        )
    spec: dict[str, Any] = {}
    for item in rest.split(","):
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or key not in OPTIONS:
            raise InvalidInput(f"Cannot read {item!r} in the threshold {text!r}: options are {', '.join(OPTIONS)}.")
        if key == "greater_is_better":
            if value.lower() not in ("true", "false", "yes", "no", "1", "0"):
                raise InvalidInput(f"greater_is_better is true or false, not {value!r} (in {text!r}).")
            spec[key] = value.lower() in ("true", "yes", "1")
        else:
            try:
                spec[key] = float(value)
            except ValueError:
                raise InvalidInput(f"{key} is a number, not {value!r} (in {text!r}).") from None
    return metric.strip(), spec


def _one(metric: str, spec: Any) -> Threshold:
    if isinstance(spec, Threshold):
        return spec
    if hasattr(spec, "greater_is_better") and hasattr(spec, "min_absolute_change"):  # mlflow's MetricThreshold
        spec = {k: getattr(spec, k) for k in OPTIONS}
    if not isinstance(spec, Mapping):
        raise InvalidInput(f"The threshold of {metric!r} is a dict of {', '.join(OPTIONS)}, not {spec!r}.")
    unknown = sorted(set(spec) - set(OPTIONS))
    if unknown:
        raise InvalidInput(f"Unknown option(s) {', '.join(unknown)} in the threshold of {metric!r}: use {OPTIONS}.")
    greater = spec.get("greater_is_better")
    if greater is None:
        greater = GREATER_IS_BETTER.get(metric)
        if greater is None:
            raise InvalidInput(
                f"Say whether greater is better for {metric!r}: add greater_is_better=True or False to its threshold.",
                metric=metric,
            )
    if not isinstance(greater, bool):
        raise InvalidInput(f"greater_is_better of {metric!r} is True or False, not {greater!r}.")
    threshold = _number(metric, "threshold", spec.get("threshold"))
    absolute = _number(metric, "min_absolute_change", spec.get("min_absolute_change"))
    relative = _number(metric, "min_relative_change", spec.get("min_relative_change"))
    if absolute is not None and absolute < 0:
        raise InvalidInput(f"min_absolute_change of {metric!r} is 0 or more, not {absolute:g}.")
    if relative is not None and not 0 <= relative <= 1:
        raise InvalidInput(f"min_relative_change of {metric!r} is between 0 and 1, not {relative:g}.")
    if threshold is None and absolute is None and relative is None:
        raise InvalidInput(
            f"The threshold of {metric!r} sets none of threshold, min_absolute_change, min_relative_change."
        )
    return Threshold(metric, greater, threshold, absolute, relative)


def _number(metric: str, key: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"{key} of {metric!r} is a number, not {value!r}.")
    return float(value)


def check(rule: Threshold, candidate: float, baseline: float | None, *, has_baseline: bool) -> Outcome:
    """Apply ``rule`` as MLflow's validation does; ``has_baseline`` False skips the change rules."""
    name = rule.metric
    better_or_equal = operator.ge if rule.greater_is_better else operator.le
    towards_better = operator.add if rule.greater_is_better else operator.sub
    failures: list[str] = []
    if math.isnan(candidate) or (baseline is not None and math.isnan(baseline)):
        failures.append(
            f"Metric {name} is not a number (candidate {candidate}, baseline {baseline}): nothing to compare."
        )
        return Outcome(False, tuple(failures))
    if rule.threshold is not None and not better_or_equal(candidate, rule.threshold):
        failures.append(
            f"Metric {name} value threshold check failed: candidate model {name} = {candidate}, "
            f"{name} threshold = {rule.threshold}."
        )
    wants_change = rule.min_absolute_change is not None or rule.min_relative_change is not None
    if not (wants_change and has_baseline):
        return Outcome(not failures, tuple(failures))
    if baseline is None:
        failures.append(
            f"Model comparison failed: metric {name} was missing from the evaluation result of the baseline model."
        )
        return Outcome(False, tuple(failures), compared=True)
    if rule.min_absolute_change is not None and not better_or_equal(
        Decimal(candidate), Decimal(towards_better(baseline, rule.min_absolute_change))
    ):
        failures.append(
            f"Metric {name} minimum absolute change check failed: candidate model {name} = {candidate}, "
            f"baseline model {name} = {baseline}, {name} minimum absolute change threshold = "
            f"{rule.min_absolute_change}."
        )
    if rule.min_relative_change is not None:
        if baseline == 0:
            failed = not better_or_equal(Decimal(candidate), Decimal(towards_better(baseline, RELATIVE_EPSILON)))
        else:
            change = (candidate - baseline) if rule.greater_is_better else (baseline - candidate)
            failed = change / abs(baseline) < rule.min_relative_change
        if failed:
            failures.append(
                f"Metric {name} minimum relative change check failed: candidate model {name} = {candidate}, "
                f"baseline model {name} = {baseline}, {name} minimum relative change threshold = "
                f"{rule.min_relative_change}."
            )
    return Outcome(not failures, tuple(failures), compared=True)


__all__ = [
    "DEFAULT_THRESHOLDS",
    "GREATER_IS_BETTER",
    "METRICS",
    "Outcome",
    "Threshold",
    "check",
    "parse_threshold_option",
    "parse_thresholds",
]
