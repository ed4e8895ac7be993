"""Approvals as SageMaker's model registry has them: a version is ``PendingApproval``, ``Approved`` or ``Rejected``
(no state: nobody asked). The state is a tag of the MLflow version; who asked, who decided, when and why go to
the event log, which is what promotion trusts (a hand-set tag has no event behind it).

    absent ──request──▶ PendingApproval ──approve──▶ Approved
    Rejected ─request─▶        └────────reject───▶ Rejected ◀──reject── Approved (revoked)
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from jupyter_mlops import _mlflow
from jupyter_mlops.exceptions import BackendUnavailable, Conflict
from jupyter_mlops.registry import current_user
from jupyter_mlops.release.records import APPROVED, PENDING, REJECTED, Approval

if TYPE_CHECKING:
    from jupyter_mlops.events.envelope import Event
    from jupyter_mlops.records import ModelVersion
    from jupyter_mlops.workspace import Workspace

STATUS_TAG = "mlops.approval.status"
REQUESTED_BY_TAG = "mlops.approval.requested_by"
REQUESTED_AT_TAG = "mlops.approval.requested_at"
REASON_TAG = "mlops.approval.reason"
DECIDED_BY_TAG = "mlops.approval.decided_by"
DECIDED_AT_TAG = "mlops.approval.decided_at"
COMMENT_TAG = "mlops.approval.comment"
EVENT_TAG = "mlops.approval.event_id"  # the logged event of the latest change
EVENT_TYPES = {"request": "model.approval_requested", "approve": "model.approved", "reject": "model.rejected"}
ALLOWED_FROM = {"request": (None, REJECTED), "approve": (PENDING,), "reject": (PENDING, APPROVED)}


def version_tags(ws: Workspace, version: ModelVersion) -> dict[str, str]:
    """Every tag of a version, ours included (the records keep only the user's)."""
    with _mlflow.translated_errors(f"reading {version.name}:{version.version}"):
        return dict(ws.client.get_model_version(version.name, str(version.version)).tags or {})


def approval(ws: Workspace, name: str, version: int | str) -> Approval:
    record = ws.models.get(name, version)
    return _approval(record, version_tags(ws, record))


def change(ws: Workspace, action: str, name: str, version: int | str, text: str | None) -> Approval:
    """Request, approve or reject, inside the model's guard (so a promotion sees the state before or after)."""
    from jupyter_mlops.release.policy import policy

    user = current_user()
    with ws.models.guard(name):
        record = ws.models.get(name, version)
        tags = version_tags(ws, record)
        status = tags.get(STATUS_TAG)
        what = f"{record.name}:{record.version}"
        if status not in ALLOWED_FROM[action]:
            raise Conflict(_refusal(action, what, status, tags), status=status)
        protected = policy(ws)
        if action == "reject":
            aliases = ws.models.get_model(record.name).aliases
            strict = {p.alias for p in protected if "approval" in p.requires}
            holding = sorted(a for a, v in aliases.items() if v == record.version and a in strict)
            if holding:
                raise Conflict(
                    f"Cannot reject {what}: it holds the protected alias(es) {', '.join(holding)}. Promote another "
                    "version there first (a rollback is promoting the previous one), then reject it.",
                    aliases=holding,
                )
        requester = tags.get(REQUESTED_BY_TAG)
        if action == "approve" and requester == user:
            strict = sorted(p.alias for p in protected if p.four_eyes)
            if strict:
                raise Conflict(
                    f"Cannot approve {what}: {user} asked for the approval, and four-eyes is on for "
                    f"{', '.join(strict)}. Someone else approves it.",
                    requested_by=user,
                )
        now = datetime.now(timezone.utc).isoformat()
        data: dict[str, Any] = {"modelName": record.name, "modelVersion": str(record.version), "previousStatus": status}
        if action == "request":
            new = {STATUS_TAG: PENDING, REQUESTED_BY_TAG: user, REQUESTED_AT_TAG: now, REASON_TAG: text or ""}
            data.update(status=PENDING, requestedBy=user, reason=text)
        else:
            new = {STATUS_TAG: APPROVED if action == "approve" else REJECTED, DECIDED_BY_TAG: user}
            new.update({DECIDED_AT_TAG: now, COMMENT_TAG: text or ""})
            by = "approvedBy" if action == "approve" else "rejectedBy"
            data.update(status=new[STATUS_TAG], comment=text, requestedBy=requester, reason=tags.get(REASON_TAG))
            data[by] = user
        event = ws.events.emit(EVENT_TYPES[action], f"models/{record.name}/versions/{record.version}", data)
        if event is None:
            raise BackendUnavailable(f"The event log could not record the change of {what}; nothing was changed.")
        new[EVENT_TAG] = event.id
        with _mlflow.translated_errors(f"recording the approval state of {what}"):
            for key, value in new.items():
                ws.client.set_model_version_tag(record.name, str(record.version), key, value)
            if action == "request":  # a new request starts over: no decision yet
                for key in (DECIDED_BY_TAG, DECIDED_AT_TAG, COMMENT_TAG):
                    if key in tags:
                        ws.client.delete_model_version_tag(record.name, str(record.version), key)
                        del tags[key]
    return _approval(record, {**tags, **new})


def logged_approval(ws: Workspace, tags: dict[str, str], subject: str) -> Event | None:
    """The ``model.approved`` event the version's tags point at, when the log has it for this version."""
    from sqlalchemy import select

    from jupyter_mlops.store.events import EventRecord

    event_id = tags.get(EVENT_TAG)
    if not event_id:
        return None
    with ws.store.session() as session:
        row = session.scalar(select(EventRecord).where(EventRecord.id == event_id))
        event = None if row is None else ws.events.to_event(row)
    if event is None or event.type != EVENT_TYPES["approve"] or event.subject != subject:
        return None
    return event


def _approval(record: ModelVersion, tags: dict[str, str]) -> Approval:
    return Approval(
        model=record.name,
        version=record.version,
        status=tags.get(STATUS_TAG),
        requested_by=tags.get(REQUESTED_BY_TAG),
        requested_at=tags.get(REQUESTED_AT_TAG),
        reason=tags.get(REASON_TAG) or None,
        decided_by=tags.get(DECIDED_BY_TAG),
        decided_at=tags.get(DECIDED_AT_TAG),
        comment=tags.get(COMMENT_TAG) or None,
    )


def _refusal(action: str, what: str, status: str | None, tags: dict[str, str]) -> str:
    asked = f"asked by {tags.get(REQUESTED_BY_TAG)}" if tags.get(REQUESTED_BY_TAG) else ""
    decided = f"by {tags.get(DECIDED_BY_TAG)}" if tags.get(DECIDED_BY_TAG) else ""
    if action == "request":
        return f"Cannot request an approval of {what}: it is already {status} ({asked or decided})."
    if status is None:
        return f"Cannot {action} {what}: nobody asked for its approval. Request it first (request_approval)."
    if action == "approve" and status == REJECTED:
        return f"Cannot approve {what}: it was rejected {decided}. Request a new approval first."
    return f"Cannot {action} {what}: it is already {status} {decided}.".replace(" .", ".")


__all__ = ["approval", "change", "logged_approval", "version_tags"]
