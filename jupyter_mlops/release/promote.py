"""Promotion: move an alias to a version once the policy's requirements hold, checked and moved inside the
model's guard so that two promotions (or a promotion and a rejection) never interleave; and the history of every
move of an alias, read back from the event log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jupyter_mlops import _mlflow
from jupyter_mlops.exceptions import PromotionRefused
from jupyter_mlops.registry import current_user
from jupyter_mlops.release.approvals import REQUESTED_BY_TAG, STATUS_TAG, logged_approval, version_tags
from jupyter_mlops.release.evaluate import GATE_PASSED_TAG, GATE_RUN_TAG, RUN_CANDIDATE_TAG, RUN_FAILURES_TAG
from jupyter_mlops.release.policy import check_alias, rule_for
from jupyter_mlops.release.records import APPROVED, AliasMove, Promotion, ProtectedAlias

if TYPE_CHECKING:
    from jupyter_mlops.records import ModelVersion
    from jupyter_mlops.workspace import Workspace

MOVE_TYPES = ("model.alias_changed", "model.promoted")


def promote(
    ws: Workspace, name: str, version: int | str, alias: str = "champion", *, reason: str | None = None
) -> Promotion:
    """Point ``alias`` at ``version`` if the policy allows it; refused with PromotionRefused naming every gap."""
    alias = check_alias(alias)
    user = current_user()
    rule = rule_for(ws, alias)
    with ws.models.guard(name):
        record = ws.models.get(name, version)
        tags = version_tags(ws, record)
        gaps, gate_run, approver = _gaps(ws, record, tags, rule, user)
        what = f"{record.name}:{record.version}"
        if gaps:
            raise PromotionRefused(
                f"Cannot promote {what} to {alias}: {'; '.join(gaps.values())}.",
                missing=list(gaps),
                model=record.name,
                version=record.version,
                alias=alias,
            )
        previous = ws.models.get_model(record.name).aliases.get(alias)
        promotion = Promotion(
            model=record.name,
            alias=alias,
            version=record.version,
            previous_version=previous,
            moved=previous != record.version,
            promoted_by=user,
            reason=reason,
            requires=[] if rule is None else rule.requires,
            gate_run_id=gate_run,
            approved_by=approver,
        )
        if not promotion.moved:
            return promotion
        ws.models.set_alias(record.name, alias, record.version)  # emits model.alias_changed
        ws.events.emit(
            "model.promoted",
            f"models/{record.name}/aliases/{alias}",
            {
                "modelName": record.name,
                "alias": alias,
                "modelVersion": str(record.version),
                "previousVersion": None if previous is None else str(previous),
                "promotedBy": user,
                "reason": reason,
                "requires": promotion.requires,
                "gateRunId": gate_run,
                "approvedBy": approver,
            },
        )
    return promotion


def _gaps(
    ws: Workspace, record: ModelVersion, tags: dict[str, str], rule: ProtectedAlias | None, user: str
) -> tuple[dict[str, str], str | None, str | None]:
    """What the version lacks (code -> sentence), its gate run and its approver."""
    gaps: dict[str, str] = {}
    gate_run = approver = None
    if rule is None:
        return gaps, gate_run, approver
    what = f"{record.name}:{record.version}"
    if "gate" in rule.requires:
        gate_run = tags.get(GATE_RUN_TAG)
        verdict = _gate_verdict(ws, gate_run, what)
        if verdict is None:
            gate_run = None
            gaps["no_gate_run"] = f"it has no gate run (evaluate it first: mlops.evaluate({what!r}, data))"
        elif verdict != "true":
            gaps["gate_failed"] = f"its gate failed (run {gate_run}{': ' + verdict if verdict != 'false' else ''})"
    if "approval" in rule.requires:
        status = tags.get(STATUS_TAG)
        event = logged_approval(ws, tags, f"models/{record.name}/versions/{record.version}")
        if status != APPROVED:
            gaps["not_approved"] = f"it is not approved ({_state(status, tags)})"
        elif event is None:
            gaps["not_approved"] = "its approval tag has no model.approved event in the event log behind it"
        else:
            approver = event.data.get("approvedBy")
            requester = event.data.get("requestedBy")
            if rule.four_eyes and approver == requester:
                gaps["four_eyes"] = (
                    f"four-eyes is on for {rule.alias} and {approver} both asked for and gave the approval"
                )
    return gaps, gate_run, approver


def _gate_verdict(ws: Workspace, run_id: str | None, what: str) -> str | None:
    """None without a (live) gate run of this version; "true" when it passed; else why it failed."""
    if not run_id:
        return None
    with _mlflow.translated_errors(f"reading the gate run {run_id}"):
        try:
            run = ws.client.get_run(run_id)
        except Exception as exc:
            if _mlflow.is_not_found(exc):
                return None
            raise
    run_tags = run.data.tags
    if run.info.lifecycle_stage == "deleted" or run_tags.get(RUN_CANDIDATE_TAG) != what:
        return None
    if run_tags.get(GATE_PASSED_TAG) == "true":
        return "true"
    return (run_tags.get(RUN_FAILURES_TAG) or "false")[:300]


def _state(status: str | None, tags: dict[str, str]) -> str:
    if status is None:
        return "nobody asked for its approval"
    asked = tags.get(REQUESTED_BY_TAG)
    return f"{status}{', asked by ' + asked if asked else ''}"


def history(ws: Workspace, name: str, alias: str | None = None) -> list[AliasMove]:
    """Every move of ``alias`` (or of each alias of ``name``), oldest first: who moved it and why, for promotions."""
    from sqlalchemy import select

    from jupyter_mlops.store.events import EventRecord

    prefix = f"models/{name}/aliases/"
    query = select(EventRecord).where(EventRecord.type.in_(MOVE_TYPES))
    if alias is None:
        query = query.where(EventRecord.subject.startswith(prefix, autoescape=True))
    else:
        query = query.where(EventRecord.subject == prefix + alias)
    with ws.store.session() as session:
        events = [ws.events.to_event(r) for r in session.scalars(query.order_by(EventRecord.seq))]
    moves: list[AliasMove] = []
    last: dict[str, int] = {}  # alias -> index of its latest move in ``moves``
    for event in events:
        data = event.data
        moved_to = _int(data.get("modelVersion"))
        if event.type == "model.promoted":
            i = last.get(data["alias"])
            if i is not None and moves[i].via == "alias" and moves[i].version == moved_to:
                moves[i] = _move(event, moves[i].seq, "promote")  # the alias change this promotion made
                continue
            moves.append(_move(event, event.seq or 0, "promote"))  # its alias change is missing from the log
            last[data["alias"]] = len(moves) - 1
            continue
        last[data["alias"]] = len(moves)
        moves.append(_move(event, event.seq or 0, "alias" if moved_to is not None else "remove"))
    return moves


def _move(event: Any, seq: int, via: str) -> AliasMove:
    data = event.data
    return AliasMove(
        seq=seq,
        time=event.time,
        model=data["modelName"],
        alias=data["alias"],
        version=_int(data.get("modelVersion")),
        previous_version=_int(data.get("previousVersion")),
        via=via,
        by=data.get("promotedBy"),
        reason=data.get("reason"),
    )


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


__all__ = ["history", "promote"]
