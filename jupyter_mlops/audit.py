"""The audit of a model: who registered each version and why, where it came from, when it was deployed where and
with what traffic, when it was last used and how often, and whether it is archived or deleted.

Built from the event log (the history), the registry and runs (the present) and the collected requests (the use).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from jupyter_mlops.exceptions import InvalidInput
from jupyter_mlops.records import Record
from jupyter_mlops.refs import ModelRef

if TYPE_CHECKING:
    from jupyter_mlops.workspace import Workspace


@dataclass(frozen=True)
class VersionAudit(Record):
    model: str
    version: int
    registered_by: str | None
    registered_at: datetime | None
    description: str | None
    run_id: str | None
    pipeline: str | None
    step: str | None
    commit: str | None
    deployments: list[dict[str, Any]] = field(default_factory=list)  # endpoint, deployment, deployed_at, traffic
    requests: int = 0
    last_used: str | None = None
    archived: bool = False
    deleted: bool = False
    deleted_at: str | None = None
    table_columns: ClassVar[tuple[str, ...]] = (
        "model",
        "version",
        "registered_by",
        "description",
        "deployments",
        "requests",
        "last_used",
        "deleted",
    )


def audit(ws: Workspace, model: str) -> list[VersionAudit]:
    """One record per version of ``model`` ever registered (deleted ones included, from the event log)."""
    events = [e for e in ws.events.tail(limit=1_000_000) if _concerns(e, model)]
    registered = {int(e.data["modelVersion"]): e for e in events if e.type == "model.registered"}
    deleted = {
        int(v): e.time.isoformat() for e in events if e.type == "model.deleted" for v in e.data.get("modelVersions", [])
    }
    try:
        current = {v.version: v for v in ws.models.list(f"name={model}", include_archived=True) if v.name == model}
    except Exception:
        current = {}
    deployments = _deployments(ws, model)
    audits = []
    for version in sorted(set(registered) | set(current)):
        record = current.get(version)
        event = registered.get(version)
        run_id = record.run_id if record else (event.data.get("runId") if event else None)
        tags = _run_tags(ws, run_id)
        served = deployments.get(version, [])
        count, last = _usage(ws, served)
        audits.append(
            VersionAudit(
                model=model,
                version=version,
                registered_by=(record.created_by if record else None)
                or (event.data.get("createdBy") if event else None),
                registered_at=record.created_at if record else (event.time if event else None),
                description=(record.description if record else None)
                or (event.data.get("modelProperties", {}).get("description") if event else None)
                or None,
                run_id=run_id,
                pipeline=tags.get("mlops.pipeline") or (record.tags.get("pipeline") if record else None),
                step=tags.get("mlops.step.name") or (record.tags.get("pipeline_step") if record else None),
                commit=tags.get("mlflow.source.git.commit"),
                deployments=served,
                requests=count,
                last_used=last,
                archived=bool(record and record.archived),
                deleted=record is None,
                deleted_at=deleted.get(version),
            )
        )
    return audits


def to_csv(audits: list[VersionAudit]) -> str:
    buffer = io.StringIO()
    fields = list(VersionAudit.__dataclass_fields__)
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    for entry in audits:
        row = entry.to_dict()
        row["deployments"] = json.dumps(row["deployments"])
        writer.writerow(row)
    return buffer.getvalue()


def _concerns(event: Any, model: str) -> bool:
    data = event.data
    if data.get("modelName") == model:
        return True
    return event.type in ("deployment.created", "deployment.traffic_changed")


def _deployments(ws: Workspace, model: str) -> dict[int, list[dict[str, Any]]]:
    """Every time a version was deployed, with the traffic its deployment had then and since."""
    served: dict[int, list[dict[str, Any]]] = {}
    history = ws.events.tail(types=["deployment.created", "deployment.traffic_changed"], limit=1_000_000)
    for event in history:
        if event.type != "deployment.created":
            continue
        for model_id in str(event.data.get("modelIds", "")).split(","):
            try:
                ref = ModelRef.parse(model_id)
            except InvalidInput:
                continue
            if ref.name != model or ref.version is None:
                continue
            endpoint, deployment = event.data.get("endpointName"), event.data.get("deploymentName")
            traffic = [
                {"time": t.time.isoformat(), "percent": t.data.get("traffic", {}).get(deployment, 0)}
                for t in history
                if t.type == "deployment.traffic_changed"
                and t.data.get("endpointName") == endpoint
                and t.time >= event.time
            ]
            replaced = next(
                (
                    e.time
                    for e in history
                    if e.type == "deployment.created"
                    and e.time > event.time
                    and e.data.get("endpointName") == endpoint
                    and e.data.get("deploymentName") == deployment
                ),
                None,
            )
            served.setdefault(ref.version, []).append(
                {
                    "endpoint": endpoint,
                    "deployment": deployment,
                    "deployed_at": event.time.isoformat(),
                    "until": replaced.isoformat() if replaced else None,
                    "traffic": traffic,
                }
            )
    return served


def _usage(ws: Workspace, served: list[dict[str, Any]]) -> tuple[int, str | None]:
    """Requests a version answered (from the collected inputs), and the last time it did."""
    count, last = 0, None
    for entry in served:
        folder = ws.layout.collected(str(entry["endpoint"]), str(entry["deployment"]))
        start, end = entry["deployed_at"], entry["until"] or "9999"
        for path in sorted(Path(folder).glob("*.jsonl")) if folder.exists() else []:
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    moment = json.loads(line)["time"]
                    if start <= moment < end:
                        count += 1
                        last = max(last or moment, moment)
    return count, last


def _run_tags(ws: Workspace, run_id: str | None) -> dict[str, str]:
    if not run_id:
        return {}
    try:
        return dict(ws.client.get_run(run_id).data.tags)
    except Exception:
        return {}
