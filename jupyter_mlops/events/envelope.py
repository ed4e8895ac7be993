"""CloudEvents 1.0 envelopes for lifecycle events, and Azure ML's payload fields for the four event types it has.

Handlers written for Azure's Event Grid schema read the same keys from ``data``: ModelRegistered, ModelDeployed,
RunCompleted and DatasetDriftDetected.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar

from jupyter_mlops.records import Record

EVENT_TYPES = (
    "run.completed",
    "run.failed",
    "model.registered",
    "model.alias_changed",
    "model.updated",
    "model.deleted",
    "model.evaluated",
    "model.approval_requested",
    "model.approved",
    "model.rejected",
    "model.promoted",
    "policy.changed",
    "endpoint.created",
    "deployment.created",
    "deployment.traffic_changed",
    "deployment.failed",
    "endpoint.deleted",
    "endpoint.worker_restarted",
    "endpoint.supervisor_restarted",
    "deployment.restarted",
    "pipeline.completed",
    "pipeline.failed",
    "drift.detected",
    "prediction_drift.detected",
    "monitor.failed",
    "automation.ran",
    "automation.notification",
    "rollout.started",
    "rollout.step",
    "rollout.completed",
    "rollout.rolled_back",
)


@dataclass(frozen=True)
class Event(Record):
    """A lifecycle event as stored and delivered (the CloudEvents attributes plus our sequence number)."""

    id: str
    source: str
    type: str
    subject: str
    time: datetime
    data: dict[str, Any]
    seq: int | None = None
    specversion: str = "1.0"
    table_columns: ClassVar[tuple[str, ...]] = ("seq", "time", "type", "subject", "id")

    def to_cloudevent(self) -> dict[str, Any]:
        """The structured-mode JSON body (``application/cloudevents+json``)."""
        return {
            "specversion": self.specversion,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "subject": self.subject,
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "datacontenttype": "application/json",
            "data": self.data,
        }


def new_event(type: str, subject: str, data: dict[str, Any], source: str) -> Event:
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}; known: {', '.join(EVENT_TYPES)}")
    return Event(
        id=str(uuid.uuid4()), source=source, type=type, subject=subject, time=datetime.now(timezone.utc), data=data
    )


def structured_http(event: Event) -> tuple[dict[str, str], bytes]:
    """Headers and body of the event in CloudEvents' structured HTTP mode, built by the CloudEvents SDK."""
    from cloudevents.core.bindings.http import to_structured
    from cloudevents.core.formats.json import JSONFormat
    from cloudevents.core.v1.event import CloudEvent

    attributes = {k: v for k, v in event.to_cloudevent().items() if k != "data"}
    attributes["time"] = event.time
    message = to_structured(CloudEvent(attributes, event.data), JSONFormat())
    return dict(message.headers), message.body


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, default=str)


# -- Azure-compatible payloads --------------------------------------------------------------------------------
def model_registered(name: str, version: int, tags: dict[str, str], description: str | None, **extra: Any) -> dict:
    return {
        "modelName": name,
        "modelVersion": str(version),
        "modelTags": tags,
        "modelProperties": {"description": description or ""},
        **extra,
    }


def run_completed(
    experiment_id: str, experiment_name: str, run_id: str, run_type: str, tags: dict[str, str], **extra: Any
) -> dict:
    return {
        "experimentId": experiment_id,
        "experimentName": experiment_name,
        "runId": run_id,
        "runType": run_type,
        "runTags": tags,
        "runProperties": {},
        **extra,
    }


def model_deployed(service: str, compute_type: str, model_ids: list[str], tags: dict[str, str], **extra: Any) -> dict:
    return {
        "serviceName": service,
        "serviceComputeType": compute_type,
        "modelIds": ",".join(model_ids),
        "serviceTags": tags,
        "serviceProperties": {},
        **extra,
    }


def drift_detected(
    monitor_id: str,
    monitor_name: str,
    run_id: str,
    base_dataset: str,
    target_dataset: str,
    drift_coefficient: float,
    start: datetime,
    end: datetime,
    **extra: Any,
) -> dict:
    return {
        "dataDriftId": monitor_id,
        "dataDriftName": monitor_name,
        "runId": run_id,
        "baseDatasetId": base_dataset,
        "targetDatasetId": target_dataset,
        "driftCoefficient": drift_coefficient,
        "startTime": start.isoformat(),
        "endTime": end.isoformat(),
        **extra,
    }
