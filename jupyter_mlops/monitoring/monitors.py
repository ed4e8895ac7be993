"""Monitors: compare what a deployment received in a window with a reference, on a schedule.

A run claims its window in the store first (``window_end`` moves forward only if nobody moved it since), so two
schedulers at once never check the same window twice. Each run is an MLflow run with per-feature scores as metrics
and the evidently report (HTML and JSON) as artifacts; a threshold crossed emits ``drift.detected``. The run's
figures also go to the store's history (``history.py``), in the transaction that records its result, and the
deployment's outputs are compared with its model's predictions on the reference (``predictions.py``).
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from jupyter_mlops.exceptions import Conflict, InvalidInput, NotFound
from jupyter_mlops.names import check_name
from jupyter_mlops.records import Record
from jupyter_mlops.store.schema import as_utc

if TYPE_CHECKING:
    from jupyter_mlops.workspace import Workspace

THRESHOLD_KEYS = ("drift_share", "null_rate", "out_of_range_share")
_DURATION = re.compile(r"^(\d+)\s*([smhd])$")


@dataclass(frozen=True)
class Monitor(Record):
    name: str
    endpoint: str
    deployment: str | None
    features: list[str]
    schedule_s: int
    thresholds: dict[str, float]
    window_end: datetime
    last_run_id: str | None
    last_result: dict[str, Any] | None
    created_at: datetime | None
    table_columns: ClassVar[tuple[str, ...]] = ("name", "endpoint", "deployment", "schedule_s", "window_end")


@dataclass(frozen=True)
class MonitorRun(Record):
    monitor: str
    run_id: str | None
    window_start: datetime
    window_end: datetime
    rows: int
    drifted: bool
    drift_share: float | None
    alerts: list[str]
    quality: dict[str, float]  # model quality over the labelled requests of the window (log_labels)
    prediction_drift: float | None = None  # the largest distance of the outputs from the reference predictions
    notes: list[str] = field(default_factory=list)  # what the run skipped, and why
    table_columns: ClassVar[tuple[str, ...]] = ("monitor", "rows", "drifted", "drift_share", "alerts", "window_end")


def parse_schedule(text: str | int) -> int:
    """``"15m"``, ``"1h"``, ``"30s"``, ``"1d"`` or seconds."""
    if isinstance(text, int):
        seconds = text
    else:
        match = _DURATION.match(str(text).strip())
        if not match:
            raise InvalidInput(f"Cannot read the schedule {text!r}: write a number and a unit, e.g. 30s, 15m, 1h, 1d.")
        seconds = int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    if seconds < 1:
        raise InvalidInput("The schedule must be at least one second.")
    return seconds


class Monitors:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def create(
        self,
        name: str,
        endpoint: str,
        *,
        reference: Any,
        deployment: str | None = None,
        features: list[str] | None = None,
        schedule: str | int = "15m",
        thresholds: dict[str, float] | None = None,
    ) -> Monitor:
        from sqlalchemy.exc import IntegrityError

        from jupyter_mlops.store.monitors import MonitorRecord

        check_name(name, "monitor")
        info = self.ws.endpoints.show(endpoint)
        names = [d.name for d in info.deployments]
        if deployment is not None and deployment not in names:
            raise InvalidInput(f"Endpoint {endpoint} has no deployment {deployment!r}; deployments: {names}.")
        frame = _reference_frame(reference)
        features = features or [str(c) for c in frame.columns]
        unknown = sorted(set(features) - {str(c) for c in frame.columns})
        if unknown:
            raise InvalidInput(f"Features {unknown} are not columns of the reference ({list(frame.columns)}).")
        limits = {"drift_share": 0.3, **(thresholds or {})}
        bad = sorted(set(limits) - set(THRESHOLD_KEYS))
        if bad:
            raise InvalidInput(f"Unknown threshold(s) {bad}; known: {', '.join(THRESHOLD_KEYS)}.")
        seconds = parse_schedule(schedule)
        folder = self.ws.layout.monitor(name)
        folder.mkdir(parents=True, exist_ok=True)
        frame[features].to_parquet(folder / "reference.parquet", index=False)
        from jupyter_mlops.monitoring import predictions

        predictions.prepare(self.ws, folder, endpoint, deployment, frame)
        try:
            with self.ws.store.session() as session:
                session.add(
                    MonitorRecord(
                        name=name,
                        endpoint=endpoint,
                        deployment=deployment,
                        reference=str(folder / "reference.parquet"),
                        features=json.dumps(features),
                        schedule_s=seconds,
                        thresholds=json.dumps(limits),
                        window_end=_now() - timedelta(seconds=seconds),
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"A monitor named {name!r} exists; delete it first or choose another name.") from exc
        return self.get(name)

    def get(self, name: str) -> Monitor:
        return _monitor(self._record(name))

    def list(self) -> list[Monitor]:
        from sqlalchemy import select

        from jupyter_mlops.store.monitors import MonitorRecord

        with self.ws.store.session() as session:
            return [_monitor(r) for r in session.scalars(select(MonitorRecord).order_by(MonitorRecord.name))]

    def delete(self, name: str) -> None:
        import shutil

        from sqlalchemy import delete

        from jupyter_mlops.monitoring import history
        from jupyter_mlops.store.monitors import MonitorRecord

        self._record(name)
        with self.ws.store.session() as session:
            session.execute(delete(MonitorRecord).where(MonitorRecord.name == name))
            history.delete(session, name)
        shutil.rmtree(self.ws.layout.monitor(name), ignore_errors=True)

    def run(
        self, name: str, *, now: datetime | None = None, min_requests: int | None = None, timeout: float = 30.0
    ) -> MonitorRun | None:
        """Check the window since the last run; None when another scheduler has taken (or checked) it.
        ``min_requests``: first wait (up to ``timeout`` seconds) until that many requests are collected, since an
        endpoint writes what it collects in small batches off the request path."""
        from sqlalchemy import update

        from jupyter_mlops.store.monitors import MonitorRecord

        if min_requests is not None:
            deadline = time.monotonic() + timeout
            while self.pending_requests(name) < min_requests and time.monotonic() < deadline:
                time.sleep(0.05)
        record = self._record(name)
        start, end = as_utc(record.window_end), now or _now()
        if end <= start:
            return None  # that window has been checked already
        with self.ws.store.session() as session:
            claimed = session.execute(
                update(MonitorRecord)
                .where(MonitorRecord.name == name, MonitorRecord.window_end == record.window_end)
                .values(window_end=end)
                .execution_options(synchronize_session=False)
            ).rowcount
        if claimed != 1:
            return None
        try:
            result, figures = self._check(record, start, end)
        except Exception as exc:
            self.ws.events.emit(
                "monitor.failed", f"monitors/{name}", {"monitorName": name, "error": f"{type(exc).__name__}: {exc}"}
            )
            raise
        from jupyter_mlops.monitoring import history

        with self.ws.store.session() as session:
            session.execute(
                update(MonitorRecord)
                .where(MonitorRecord.name == name)
                .values(last_run_id=result.run_id, last_result=json.dumps(result.to_dict(), default=str))
            )
            history.write(session, name, result.run_id, end, figures)
        return result

    def pending_requests(self, name: str) -> int:
        """How many collected requests the next run would check (those after the last checked window)."""
        record = self._record(name)
        later = datetime.max.replace(tzinfo=timezone.utc)
        return sum(1 for _ in _collected(self.ws, record.endpoint, record.deployment, as_utc(record.window_end), later))

    def history(self, name: str, *, since: datetime | str | None = None, signal: str | None = None) -> Any:
        """Every run's figures as a DataFrame (time, run_id, signal, feature, value, threshold, alert), oldest
        first: ``since`` keeps the windows that ended at or after it, ``signal`` one signal (``drift_score``,
        ``drift_share``, ``null_rate``, ``out_of_range_share``, ``rows``, ``quality.*``, ``prediction_drift``)."""
        from jupyter_mlops.monitoring import history

        self._record(name)
        return history.read(self.ws, name, since=since, signal=signal)

    def log_labels(self, endpoint: str, labels: Any) -> int:
        """Record the true outcomes of requests (a DataFrame with ``request_id`` and ``label``), for the monitors'
        model-quality metrics; ``request_id`` is the ``mlops-request-id`` header of the response."""
        import pandas as pd

        from jupyter_mlops._filelock import FileLock

        self.ws.endpoints.show(endpoint)
        if not isinstance(labels, pd.DataFrame) or not {"request_id", "label"} <= set(labels.columns):
            raise InvalidInput("log_labels needs a DataFrame with the columns request_id and label.")
        path = self.ws.layout.labels(endpoint)
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [
            json.dumps({"request_id": str(r), "label": _plain(v)})
            for r, v in zip(labels["request_id"], labels["label"], strict=True)
        ]
        with FileLock(path.with_name(f".{path.stem}.lock")), open(path, "a", encoding="utf-8") as out:
            out.write("".join(line + "\n" for line in lines))
        return len(lines)

    def run_due(self, *, now: datetime | None = None) -> list[MonitorRun]:
        """Run every monitor whose schedule has come (for cron, CI, or the server extension's scheduler)."""
        moment = now or _now()
        due = [m for m in self.list() if as_utc(m.window_end) + timedelta(seconds=m.schedule_s) <= moment]
        return [r for m in due if (r := self.run(m.name, now=moment)) is not None]

    # -- internals ----------------------------------------------------------------------------------------------
    def _check(self, record: Any, start: datetime, end: datetime) -> tuple[MonitorRun, list[dict[str, Any]]]:
        """The run and its figures (for the history); the figures are logged as the run's metrics too."""
        import pandas as pd

        from jupyter_mlops import _mlflow
        from jupyter_mlops.events import envelope
        from jupyter_mlops.monitoring.drift import drift
        from jupyter_mlops.monitoring.history import figure

        features = json.loads(record.features)
        limits = json.loads(record.thresholds)
        reference = pd.read_parquet(record.reference)
        current = collected_inputs(self.ws, record.endpoint, record.deployment, start, end, features)
        client = self.ws.client
        run = client.create_run(
            self.ws.experiment_id(f"monitor-{record.name}"),
            run_name=f"{record.name} {end:%Y-%m-%d %H:%M}",
            tags={"mlops.monitor": record.name, "mlops.endpoint": record.endpoint},
        )
        run_id = run.info.run_id
        figures = [figure("rows", len(current))]
        with _mlflow.translated_errors(f"recording monitor {record.name}"):
            if len(current) < 2:
                self._log(run_id, figures)
                _mlflow.terminate_run(client, run_id, "FINISHED")
                notes = [f"{len(current)} collected row(s) in the window: drift needs at least 2"]
                return MonitorRun(
                    record.name, run_id, start, end, len(current), False, None, [], {}, None, notes
                ), figures
            result = drift(reference, current, features=features, drift_share=limits["drift_share"])
            figures.append(
                figure("drift_share", result.drift_share, threshold=limits["drift_share"], alert=result.drifted)
            )
            for row in result.features.itertuples():
                figures.append(
                    figure("drift_score", row.score, feature=row.feature, threshold=row.threshold, alert=row.drifted)
                )
            alerts = []
            if result.drifted:
                alerts.append(f"drift_share {result.drift_share:.2f} >= {limits['drift_share']}")
            for column, checks in result.quality.items():
                over = "null_rate" in limits and checks["null_rate"] > limits["null_rate"]
                figures.append(
                    figure(
                        "null_rate", checks["null_rate"], feature=column, threshold=limits.get("null_rate"), alert=over
                    )
                )
                if over:
                    alerts.append(f"null_rate of {column} {checks['null_rate']:.2f} > {limits['null_rate']}")
                if "out_of_range" not in checks:
                    continue
                share = checks["out_of_range"] / len(current)
                over = "out_of_range_share" in limits and share > limits["out_of_range_share"]
                limit = limits.get("out_of_range_share")
                figures.append(figure("out_of_range_share", share, feature=column, threshold=limit, alert=over))
                if over:
                    alerts.append(f"out-of-range share of {column} {share:.2f} > {limits['out_of_range_share']}")
            outputs, notes = self._prediction_drift(record, start, end)
            for o in outputs:
                figures.append(
                    figure(
                        "prediction_drift",
                        o["score"],
                        feature=o["output"],
                        threshold=o["threshold"],
                        alert=o["drifted"],
                    )
                )
            performance = model_quality(self.ws, record.endpoint, record.deployment, start, end)
            figures.extend(figure(f"quality.{metric}", value) for metric, value in performance.items())
            self._log(run_id, figures)
            with tempfile.TemporaryDirectory() as tmp:
                result.save_html(Path(tmp) / "drift_report.html")
                result.save_json(Path(tmp) / "drift_report.json")
                client.log_artifacts(run_id, tmp, "report")
            _mlflow.terminate_run(client, run_id, "FINISHED")
        subject = f"monitors/{record.name}"
        if alerts:
            self.ws.events.emit(
                "drift.detected",
                subject,
                envelope.drift_detected(
                    str(record.id),
                    record.name,
                    run_id,
                    record.reference,
                    f"{record.endpoint}/{record.deployment or '*'}",
                    result.drift_share,
                    start,
                    end,
                    alerts=alerts,
                    drifted_features=result.features.query("drifted")["feature"].tolist(),
                ),
            )
        if any(o["drifted"] for o in outputs):
            from jupyter_mlops.monitoring.predictions import event_payload

            self.ws.events.emit(
                "prediction_drift.detected", subject, event_payload(record, run_id, start, end, outputs)
            )
        worst = max((o["score"] for o in outputs), default=None)
        return (
            MonitorRun(
                record.name,
                run_id,
                start,
                end,
                len(current),
                result.drifted,
                result.drift_share,
                alerts,
                performance,
                worst,
                notes,
            ),
            figures,
        )

    def _log(self, run_id: str, figures: list[dict[str, Any]]) -> None:
        """The figures as the run's metrics, in one request."""
        from mlflow.entities import Metric

        from jupyter_mlops.monitoring.history import metric_name

        stamp = int(_now().timestamp() * 1000)
        metrics = [Metric(metric_name(f["signal"], f["feature"]), f["value"], stamp, 0) for f in figures]
        self.ws.client.log_batch(run_id, metrics=metrics)

    def _prediction_drift(self, record: Any, start: datetime, end: datetime) -> tuple[list[dict[str, Any]], list[str]]:
        """The window's outputs against the reference predictions; no figures, and a note, when there is nothing
        to compare."""
        from jupyter_mlops.monitoring import predictions

        expected, why = predictions.reference_predictions(Path(record.reference).parent)
        if expected is None:
            return [], [f"prediction_drift skipped: {why}"]
        current = predictions.collected_outputs(_collected(self.ws, record.endpoint, record.deployment, start, end))
        outcomes = predictions.compare(expected, current)
        if not outcomes:
            return [], [f"prediction_drift skipped: {len(current)} collected output(s) in the window to compare"]
        return outcomes, []

    def _record(self, name: str) -> Any:
        from sqlalchemy import select

        from jupyter_mlops.store.monitors import MonitorRecord

        with self.ws.store.session() as session:
            record = session.scalar(select(MonitorRecord).where(MonitorRecord.name == name))
            if record is None:
                names = session.scalars(select(MonitorRecord.name)).all()
                raise NotFound(f"No monitor named {name!r}; monitors: {', '.join(names) or 'none'}.", names=names)
            return record


def collected_inputs(
    ws: Workspace, endpoint: str, deployment: str | None, start: datetime, end: datetime, columns: list[str]
) -> Any:
    """The rows a deployment (or every deployment) of ``endpoint`` received between ``start`` and ``end``."""
    import pandas as pd

    from jupyter_mlops.deploy.protocols import tensors
    from jupyter_mlops.deploy.scoring import mlflow_payload, to_rows

    rows: list[list[Any]] = []
    for entry in _collected(ws, endpoint, deployment, start, end):
        if not isinstance(entry.get("input"), dict):
            continue
        try:
            body = json.dumps(entry["input"]).encode()
            if entry.get("protocol") == "v2":  # an Open Inference Protocol request, collected as it came
                body = tensors.to_body(tensors.read_request(body, None).inputs, columns)
            fmt, data = mlflow_payload(body)
            batch, given = to_rows(fmt, data, None)
        except InvalidInput:
            continue  # not an MLflow-format request (a custom scoring script's body)
        if given and list(given) != columns:
            batch = [[dict(zip(given, r, strict=False)).get(c) for c in columns] for r in batch]
        rows.extend(batch)
    return pd.DataFrame(rows, columns=columns)


def model_quality(
    ws: Workspace, endpoint: str, deployment: str | None, start: datetime, end: datetime
) -> dict[str, float]:
    """Accuracy (discrete labels) or mean absolute error (numbers) of the window's labelled requests."""
    path = ws.layout.labels(endpoint)
    if not path.exists():
        return {}
    labels = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            entry = json.loads(line)
            labels[entry["request_id"]] = entry["label"]
    pairs = []
    for entry in _collected(ws, endpoint, deployment, start, end):
        predictions = entry.get("output", {}).get("predictions") if isinstance(entry.get("output"), dict) else None
        if entry.get("request_id") in labels and predictions:
            pairs.append((predictions[0], labels[entry["request_id"]]))
    if not pairs:
        return {}
    if all(isinstance(t, float) and not float(t).is_integer() for _, t in pairs):
        return {"labelled": float(len(pairs)), "mae": sum(abs(float(p) - t) for p, t in pairs) / len(pairs)}
    return {"labelled": float(len(pairs)), "accuracy": sum(str(p) == str(t) for p, t in pairs) / len(pairs)}


def _collected(ws: Workspace, endpoint: str, deployment: str | None, start: datetime, end: datetime) -> Any:
    """The collected entries (parsed JSON lines) of a window, oldest first."""
    root = ws.layout.collected(endpoint)
    folders = [ws.layout.collected(endpoint, deployment)] if deployment else [p for p in root.glob("*") if p.is_dir()]
    first_day = start.date().isoformat()
    for folder in folders:
        for path in sorted(folder.glob("*.jsonl")):
            if path.name[:10] < first_day:
                continue  # one file per day: older days cannot hold the window
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    entry = json.loads(line)
                    if start <= datetime.fromisoformat(entry["time"]) < end:
                        yield entry


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _reference_frame(reference: Any) -> Any:
    import pandas as pd

    if isinstance(reference, pd.DataFrame):
        return reference.copy()
    if isinstance(reference, (str, Path)) and str(reference) != "training":
        path = Path(reference)
        if not path.is_file():
            raise InvalidInput(f"The reference {path} does not exist.")
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    raise InvalidInput(
        "Pass the reference as a DataFrame or a CSV/Parquet file (for example the model's training features)."
    )


def _monitor(record: Any) -> Monitor:
    return Monitor(
        name=record.name,
        endpoint=record.endpoint,
        deployment=record.deployment,
        features=json.loads(record.features),
        schedule_s=record.schedule_s,
        thresholds=json.loads(record.thresholds),
        window_end=as_utc(record.window_end),
        last_run_id=record.last_run_id,
        last_result=json.loads(record.last_result) if record.last_result else None,
        created_at=record.created_at,
    )


def _now() -> datetime:
    return datetime.now(timezone.utc)
