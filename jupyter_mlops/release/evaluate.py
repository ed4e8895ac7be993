"""The evaluation gate: a candidate version and its baseline scored on the same rows by MLflow's default
evaluator, compared with ``MetricThreshold`` rules, recorded as one MLflow run and as tags on the candidate.

The run (experiment ``model-evaluations``) holds both versions' metrics (``candidate_accuracy_score``,
``baseline_accuracy_score``, ...) and plots, the thresholds as params, the verdict as tags and ``verdict.json``.
The candidate version gets ``mlops.gate.passed`` and ``mlops.gate.run_id``: what promotion checks.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from jupyter_mlops import _mlflow
from jupyter_mlops.exceptions import InvalidInput
from jupyter_mlops.refs import ModelRef
from jupyter_mlops.registry import current_user
from jupyter_mlops.release.records import Evaluation, MetricResult
from jupyter_mlops.release.thresholds import METRICS, Threshold, check, parse_thresholds
from jupyter_mlops.tables import read_table

if TYPE_CHECKING:
    import pandas as pd

    from jupyter_mlops.records import ModelVersion
    from jupyter_mlops.workspace import Workspace

EVALUATION_EXPERIMENT = "model-evaluations"
DEFAULT_EVALUATOR_CONFIG = {"log_model_explainability": False}
GATE_PASSED_TAG = "mlops.gate.passed"  # on the candidate version and on the run: "true" | "false"
GATE_RUN_TAG = "mlops.gate.run_id"
GATE_BASELINE_TAG = "mlops.gate.baseline"  # NAME:VERSION, or "none"
GATE_AT_TAG = "mlops.gate.evaluated_at"
GATE_METRIC_TAG = "mlops.gate.metric."  # + metric: a pipeline gate's figure on the version, for later candidates
RUN_CANDIDATE_TAG = "mlops.gate.candidate"  # on the run: which version it gates
RUN_FAILURES_TAG = "mlops.gate.failures"
VERDICT_ARTIFACT = "verdict.json"
PREFIXES = {"candidate": "candidate_", "baseline": "baseline_"}
DEFAULT_BY_TYPE: dict[str, dict[str, dict[str, Any]]] = {
    "classifier": {"accuracy_score": {"min_absolute_change": 0.0}},
    "regressor": {"root_mean_squared_error": {"min_absolute_change": 0.0}},
}


def evaluate(
    ws: Workspace,
    candidate: str,
    data: Any,
    *,
    baseline: str | None = "champion",
    targets: str = "label",
    thresholds: Mapping[str, Any] | None = None,
    model_type: str | None = None,
    evaluator_config: Mapping[str, Any] | None = None,
) -> Evaluation:
    """Score ``candidate`` (``NAME:VERSION``) and ``baseline`` (an alias of the same model, ``NAME:VERSION``, or
    None) on ``data`` (a DataFrame, or a CSV or Parquet file) holding the ``targets`` column, and gate it.

    ``thresholds``: metric name to MLflow ``MetricThreshold`` options (or ``MetricThreshold`` objects); None is
    ``{"accuracy_score": {"min_absolute_change": 0.0}}`` for a classifier, ``root_mean_squared_error`` for a
    regressor: at least as good as the baseline. Without a baseline only ``threshold`` limits apply.
    ``model_type``: ``classifier`` or ``regressor``, read from a scikit-learn model when not given.
    ``evaluator_config``: passed to MLflow's default evaluator (``pos_label``...); SHAP explanations are off unless
    ``log_model_explainability=True`` (a gate needs figures; they cost most of an evaluation; see ``mlops.explain``).
    """
    ref = ModelRef.parse(candidate)
    cand = ws.models.get(ref.name, ref.selector)
    base, base_alias = _baseline(ws, cand, baseline)
    frame = read_table(data, "the evaluation data")
    _check_rows_and_target(frame, targets)
    with tracking(ws):
        cand_model = _load(cand)
        base_model = _load(base) if base is not None else None
    kind = _model_type(model_type, cand, cand_model, base, base_model)
    rules = parse_thresholds(DEFAULT_BY_TYPE[kind] if thresholds is None else thresholds)
    _check_metric_names(rules, kind)
    _check_columns(cand, cand_model, frame, targets)
    if base is not None:
        _check_columns(base, base_model, frame, targets)
    user, started = current_user(), datetime.now(timezone.utc)
    experiment_id = ws.experiment_id(EVALUATION_EXPERIMENT)
    with tracking(ws), _evaluation_run(experiment_id, cand, base, user) as run_id:
        try:
            with _quiet_evaluation():
                import mlflow.data

                dataset = mlflow.data.from_pandas(frame, targets=targets, name=f"evaluation-{cand.name}")
                config = {**DEFAULT_EVALUATOR_CONFIG, **(evaluator_config or {})}
                produced = _scores(cand_model, dataset, kind, config, "candidate")
                missing = [m for m in rules if m not in produced]
                if missing:
                    raise InvalidInput(
                        f"The evaluation of {cand.name}:{cand.version} produces no {', '.join(map(repr, missing))}. "
                        f"It produces: {', '.join(produced)}.",
                        missing=missing,
                        produced=list(produced),
                    )
                base_scores = _scores(base_model, dataset, kind, config, "baseline") if base_model is not None else None
                metrics, failures = compare(rules, produced, base_scores)
                record = Evaluation(
                    model=cand.name,
                    version=cand.version,
                    baseline=None if base is None else f"{base.name}:{base.version}",
                    baseline_alias=base_alias,
                    passed=not failures,
                    metrics=metrics,
                    failures=failures,
                    run_id=run_id,
                    model_type=kind,
                    rows=len(frame),
                    evaluated_by=user,
                    evaluated_at=started,
                )
                _record_verdict(ws, record, rules, targets)
        except BaseException as exc:
            _note_failure(ws, run_id, exc)
            raise
    tag_version(
        ws,
        record.model,
        record.version,
        passed=record.passed,
        run_id=record.run_id,
        baseline=record.baseline,
        baseline_alias=record.baseline_alias,
        evaluated_at=record.evaluated_at,
        failures=record.failures,
    )
    return record


def compare(
    rules: dict[str, Threshold], candidate: dict[str, float], baseline: dict[str, float] | None
) -> tuple[dict[str, MetricResult], list[str]]:
    """Every metric side by side; the thresholded ones judged. Returns the metrics and the failure sentences."""
    metrics: dict[str, MetricResult] = {}
    failures: list[str] = []
    for name in dict.fromkeys([*rules, *candidate]):
        value = candidate.get(name)
        before = None if baseline is None else baseline.get(name)
        change = None if value is None or before is None else value - before
        rule = rules.get(name)
        passed = None
        if rule is not None and value is not None:
            outcome = check(rule, value, before, has_baseline=baseline is not None)
            passed = outcome.passed
            failures += outcome.failures
        threshold = None if rule is None else {**rule.to_dict(), "greater_is_better": rule.greater_is_better}
        metrics[name] = MetricResult(
            baseline=before, candidate=value, change=change, threshold=threshold, passed=passed
        )
    return metrics, failures


# -- data and models --------------------------------------------------------------------------------------------
def _check_rows_and_target(frame: pd.DataFrame, targets: str) -> None:
    columns = ", ".join(map(str, frame.columns)) or "none"
    if targets not in frame.columns:
        raise InvalidInput(
            f"The evaluation data has no target column {targets!r}; its columns: {columns}. Name the column that "
            "holds the true values with targets= (--target).",
            columns=[str(c) for c in frame.columns],
            targets=targets,
        )
    if len(frame) == 0:
        raise InvalidInput(
            f"The evaluation data has no rows (columns: {columns}).", columns=[str(c) for c in frame.columns]
        )


def _check_columns(version: ModelVersion, model: Any, frame: pd.DataFrame, targets: str) -> None:
    """The features (every column but the target) must be exactly what the model takes, when it says."""
    expected = _inputs_of(model)
    if expected is None:
        return
    features = [str(c) for c in frame.columns if c != targets]
    missing = [c for c in expected if c not in features]
    extra = [c for c in features if c not in expected]
    if not missing and not extra:
        return
    what = []
    if missing:
        what.append(f"lacks {', '.join(missing)}")
    if extra:
        what.append(f"has columns the model does not take: {', '.join(extra)}")
    raise InvalidInput(
        f"The evaluation data does not fit {version.name}:{version.version}: it {'; it '.join(what)}. The model "
        f"takes {', '.join(expected)}, and the target column is {targets!r}.",
        missing=missing,
        extra=extra,
        expected=expected,
    )


def _inputs_of(model: Any) -> list[str] | None:
    """The input columns: the MLflow signature's, else the fitted estimator's ``feature_names_in_``."""
    schema = model.metadata.get_input_schema()
    if schema is not None and schema.has_input_names():
        return [str(n) for n in schema.input_names()]
    names = getattr(_raw(model), "feature_names_in_", None)
    return None if names is None else [str(n) for n in names]


def _raw(model: Any) -> Any:
    try:
        return model.get_raw_model()
    except Exception:
        return None


def _model_type(given: str | None, cand: ModelVersion, cand_model: Any, base: Any, base_model: Any) -> str:
    if given is not None:
        if given not in METRICS:
            raise InvalidInput(f"model_type is one of {', '.join(METRICS)}, not {given!r}.")
        return given
    kind = _estimator_type(cand_model)
    if kind is None:
        raise InvalidInput(
            f"Cannot tell whether {cand.name}:{cand.version} is a classifier or a regressor: pass "
            "model_type='classifier' or 'regressor' (--model-type)."
        )
    other = _estimator_type(base_model) if base_model is not None else None
    if other is not None and other != kind:
        raise InvalidInput(
            f"{cand.name}:{cand.version} is a {kind} but the baseline {base.name}:{base.version} is a {other}: "
            "they cannot be compared on the same metrics."
        )
    return kind


def _estimator_type(model: Any) -> str | None:
    raw = _raw(model)
    if raw is None or ("sklearn" not in type(raw).__module__ and not hasattr(raw, "get_params")):
        return None
    from sklearn.base import is_classifier, is_regressor

    return "classifier" if is_classifier(raw) else "regressor" if is_regressor(raw) else None


def _check_metric_names(rules: dict[str, Threshold], kind: str) -> None:
    """A threshold on a metric the default evaluator never produces for ``kind``: refused before any work."""
    unknown = [m for m in rules if m not in METRICS[kind]]
    if unknown:
        raise InvalidInput(
            f"A {kind} evaluation produces no {', '.join(map(repr, unknown))}. "
            f"It produces: {', '.join(METRICS[kind])}.",
            missing=unknown,
            produced=list(METRICS[kind]),
        )


def _baseline(ws: Workspace, cand: ModelVersion, baseline: str | None) -> tuple[ModelVersion | None, str | None]:
    """The version to compare with, and the alias it was named by; (None, alias) when no version holds it."""
    if baseline is None:
        return None, None
    if not isinstance(baseline, str) or not baseline.strip():
        raise InvalidInput("baseline is an alias (champion), a NAME:VERSION, or None for no baseline.")
    text = baseline.strip()
    if any(c in text for c in ":@/"):
        ref = ModelRef.parse(text)
        found, alias = ws.models.get(ref.name, ref.selector), ref.alias
    elif text.isdigit() or text == "latest":
        found, alias = ws.models.get(cand.name, text), None
    else:
        holder = ws.models.get_model(cand.name).aliases.get(text)
        if holder is None:
            return None, text
        found, alias = ws.models.get(cand.name, holder), text
    if (found.name, found.version) == (cand.name, cand.version):
        raise InvalidInput(
            f"{cand.name}:{cand.version} is its own baseline ({text}): compare it with another version, or pass "
            "baseline=None (--baseline none) for absolute thresholds only."
        )
    return found, alias


def _load(version: ModelVersion) -> Any:
    import mlflow.pyfunc

    with _mlflow.translated_errors(f"loading {version.name}:{version.version}"):
        try:
            return mlflow.pyfunc.load_model(version.source)
        except Exception as exc:
            if "MLmodel" in str(exc) or "python_function" in str(exc):
                raise InvalidInput(
                    f"{version.name}:{version.version} is not an MLflow pyfunc model (registered from plain files?): "
                    "it cannot be evaluated."
                ) from exc
            raise


def _scores(model: Any, dataset: Any, kind: str, config: dict[str, Any], role: str) -> dict[str, float]:
    """MLflow's default evaluator on ``model``: its metrics, without the role's prefix they were logged under."""
    import mlflow.models

    prefix = PREFIXES[role]
    with _mlflow.translated_errors(f"evaluating the {role}"):
        result = mlflow.models.evaluate(
            model,
            dataset,
            model_type=kind,
            evaluators="default",
            evaluator_config={**config, "metric_prefix": prefix},
        )
    return {k.removeprefix(prefix): float(v) for k, v in result.metrics.items()}


# -- the MLflow records -------------------------------------------------------------------------------------------
@contextlib.contextmanager
def tracking(ws: Workspace) -> Iterator[None]:
    """MLflow's fluent API on this workspace's store for a block (``mlflow.models.evaluate`` knows no other); the
    process's previous tracking URI (a notebook's own, an outer run's) is put back after it."""
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(ws.tracking_uri)
    try:
        yield
    finally:
        if previous != ws.tracking_uri:
            mlflow.set_tracking_uri(previous)


@contextlib.contextmanager
def _evaluation_run(experiment_id: str, cand: ModelVersion, base: ModelVersion | None, user: str) -> Iterator[str]:
    """The evaluation's run, active for ``mlflow.models.evaluate`` (nested in a job's run), ended FINISHED with the
    block or FAILED when it raises. Started by experiment id: a user's ``mlflow.set_experiment`` does not matter."""
    import mlflow
    from mlflow.environment_variables import MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT

    tags = {
        "mlflow.user": user,
        RUN_CANDIDATE_TAG: f"{cand.name}:{cand.version}",
        GATE_BASELINE_TAG: "none" if base is None else f"{base.name}:{base.version}",
    }
    with _mlflow.translated_errors("starting the evaluation run"):
        run = mlflow.start_run(
            experiment_id=experiment_id,
            run_name=f"evaluate-{cand.name}-{cand.version}",
            tags=tags,
            nested=mlflow.active_run() is not None,
            log_system_metrics=False,
        )
    status = "FINISHED"
    try:
        yield run.info.run_id
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        raise
    finally:
        name = MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT.name
        saved = os.environ.get(name)
        os.environ[name] = "true"  # no "View run" link on stdout: the faces print their own output
        try:
            mlflow.end_run(status)
        finally:
            if saved is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = saved


@contextlib.contextmanager
def _quiet_evaluation() -> Iterator[None]:
    """MLflow's evaluator narrates every step and warns about inferring integer schemas for the dataset it logs."""
    with (
        _mlflow.quiet("mlflow.models.evaluation", "mlflow.data", "mlflow.types", "shap"),
        warnings.catch_warnings(),
    ):
        warnings.filterwarnings("ignore", message=".*Inferred schema contains integer column.*")
        warnings.filterwarnings("ignore", category=FutureWarning, module="shap")
        # MLflow's SHAP explainer seeds NumPy's global RNG, which NumPy announces it will stop honouring
        warnings.filterwarnings("ignore", message=".*NumPy global RNG was seeded.*", category=FutureWarning)
        before = set(_figures())
        try:
            yield
        finally:  # the evaluator's plots are logged as artifacts; left open, a notebook shows an empty figure
            pyplot = sys.modules.get("matplotlib.pyplot")
            for number in set(_figures()) - before:
                pyplot.close(number)  # type: ignore[union-attr]


def _figures() -> list[int]:
    pyplot = sys.modules.get("matplotlib.pyplot")
    return [] if pyplot is None else pyplot.get_fignums()


def _record_verdict(ws: Workspace, record: Evaluation, rules: dict[str, Threshold], targets: str) -> None:
    client = ws.client
    params = {
        "candidate": record.candidate,
        "baseline": record.baseline or "none",
        "baseline_alias": record.baseline_alias or "",
        "targets": targets,
        "model_type": record.model_type,
        "rows": str(record.rows),
        **{f"threshold.{m}": ",".join(f"{k}={v}" for k, v in r.to_dict().items()) for m, r in rules.items()},
    }
    with _mlflow.translated_errors("recording the verdict"):
        from mlflow.entities import Param, RunTag

        client.log_batch(
            record.run_id,
            params=[Param(k, v) for k, v in params.items()],
            tags=[
                RunTag(GATE_PASSED_TAG, str(record.passed).lower()),
                RunTag(RUN_FAILURES_TAG, " ".join(record.failures)[:5000]),
            ],
        )
        client.log_dict(record.run_id, record.to_dict(), VERDICT_ARTIFACT)


def _note_failure(ws: Workspace, run_id: str, exc: BaseException) -> None:
    """The run (ended FAILED) says why; the failure itself is what the caller needs to see."""
    with contextlib.suppress(Exception):
        ws.client.set_tag(run_id, "mlops.error", f"{type(exc).__name__}: {exc}"[:5000])


def tag_version(
    ws: Workspace,
    model: str,
    version: int,
    *,
    passed: bool,
    run_id: str,
    baseline: str | None,
    baseline_alias: str | None,
    evaluated_at: datetime,
    failures: list[str],
    metrics: Mapping[str, float] | None = None,
) -> None:
    """A gate's verdict on the version (what promotion reads), inside the model's guard, then the event. Used by
    ``evaluate`` and by a pipeline step's ``gate:``; ``metrics`` are kept on the version as the figures a later
    candidate is compared with."""
    tags = {
        GATE_PASSED_TAG: str(passed).lower(),
        GATE_RUN_TAG: run_id,
        GATE_BASELINE_TAG: baseline or "none",
        GATE_AT_TAG: evaluated_at.isoformat(),
        **{f"{GATE_METRIC_TAG}{name}": repr(float(value)) for name, value in (metrics or {}).items()},
    }
    with ws.models.guard(model), _mlflow.translated_errors(f"tagging {model}:{version}"):
        for key, value in tags.items():
            ws.client.set_model_version_tag(model, str(version), key, value)
    ws.events.emit(
        "model.evaluated",
        f"models/{model}/versions/{version}",
        {
            "modelName": model,
            "modelVersion": str(version),
            "passed": passed,
            "runId": run_id,
            "baseline": baseline,
            "baselineAlias": baseline_alias,
            "evaluatedBy": current_user(),
            "failures": failures,
        },
    )


__all__ = ["EVALUATION_EXPERIMENT", "GATE_PASSED_TAG", "GATE_RUN_TAG", "compare", "evaluate", "tag_version"]
