"""Running automations from the durable event log, at least once per (automation, event) and never twice.

A runner (``jupyter mlops automations run``, the Jupyter server extension while the Lab is open, or a test) reads,
for each enabled automation, the events logged after its cursor. For each matching event it inserts the run row
(automation, event id) first: the unique pair decides which runner acts. A row left ``running`` by a runner that
died is taken over with a conditional update naming the dead owner, so the action is run again (it never
completed) by exactly one runner. An event within the automation's cooldown of its last action is recorded as
skipped, saying why: that also cuts loops of an automation set off by its own results.
"""

from __future__ import annotations

import fnmatch
import json
import logging
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from jupyter_mlops.automations import actions
from jupyter_mlops.processes import ProcessIdentity

if TYPE_CHECKING:
    from jupyter_mlops.events.envelope import Event
    from jupyter_mlops.store.automations import AutomationRecord, AutomationRunRecord
    from jupyter_mlops.workspace import Workspace

log = logging.getLogger(__name__)
BATCH = 200  # events read per automation per pass


def run_pending(ws: Workspace) -> list[int]:
    """One pass: act on every new matching event and on actions whose runner died; returns the run ids acted on."""
    from sqlalchemy import select

    from jupyter_mlops.store.automations import AutomationRecord

    owner = str(ProcessIdentity.current())
    done = _take_over_orphans(ws, owner)
    with ws.store.session() as session:
        automations = [_plain(a) for a in session.scalars(select(AutomationRecord).where(AutomationRecord.enabled))]
    for automation in automations:
        events = ws.events.tail(types=automation["types"], after=automation["cursor"], limit=BATCH)
        for event in events:
            if matches(automation["conditions"], event):
                run_id = _claim(ws, automation["name"], event, owner)
                if run_id is not None:
                    _act(ws, automation, event, run_id)
                    done.append(run_id)
            _advance(ws, automation["name"], event.seq or 0)
    return done


def matches(conditions: dict[str, str], event: Event) -> bool:
    """Every condition's glob matches its field (``subject``, ``type`` or ``data.KEY``); a missing field does not."""
    for path, pattern in conditions.items():
        try:
            value = actions.field(event, path)
        except Exception:
            return False
        text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
        if not fnmatch.fnmatchcase(text, pattern):
            return False
    return True


def _plain(record: AutomationRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "types": json.loads(record.types),
        "conditions": json.loads(record.conditions),
        "action": json.loads(record.action),
        "cooldown_s": record.cooldown_s,
        "cursor": record.cursor,
    }


def _claim(ws: Workspace, automation: str, event: Event, owner: str) -> int | None:
    """The new run row's id, or None: another runner inserted it first (the idempotency key)."""
    from sqlalchemy.exc import IntegrityError

    from jupyter_mlops.store.automations import AutomationRunRecord

    try:
        with ws.store.session() as session:
            row = AutomationRunRecord(
                automation=automation,
                event_id=event.id,
                event_seq=event.seq or 0,
                event_type=event.type,
                status="running",
                owner=owner,
            )
            session.add(row)
            session.flush()
            return row.id
    except IntegrityError:
        return None


def _take_over_orphans(ws: Workspace, owner: str) -> list[int]:
    """Run again the actions whose runner died while running them (each by exactly one runner)."""
    from sqlalchemy import select, update

    from jupyter_mlops.store.automations import AutomationRecord, AutomationRunRecord

    with ws.store.session() as session:
        stale = [
            (r.id, r.owner, r.automation, r.event_id)
            for r in session.scalars(select(AutomationRunRecord).where(AutomationRunRecord.status == "running"))
        ]
    taken: list[int] = []
    for run_id, previous, automation, event_id in stale:
        identity = ProcessIdentity.parse(previous)
        if identity is None or identity.alive():
            continue
        with ws.store.session() as session:
            moved = session.execute(
                update(AutomationRunRecord)
                .where(AutomationRunRecord.id == run_id, AutomationRunRecord.owner == previous)
                .values(owner=owner, attempts=AutomationRunRecord.attempts + 1)
            )
            record = session.get(AutomationRecord, automation)
            plain = None if record is None else _plain(record)
        if moved.rowcount != 1 or plain is None:  # type: ignore[attr-defined]
            continue
        seq = ws.events.seq_of(event_id)
        event = next(iter(ws.events.tail(after=seq - 1, limit=1)), None) if seq else None
        if event is None:
            _finish(ws, run_id, "failed", f"the event {event_id} is no longer in the log", None)
            continue
        log.warning("automation %s: taking over the action for event %s from %s", automation, event_id, previous)
        _act(ws, plain, event, run_id)
        taken.append(run_id)
    return taken


def _act(ws: Workspace, automation: dict[str, Any], event: Event, run_id: int) -> None:
    name = automation["name"]
    last = _last_action(ws, name, run_id)
    cooldown = automation["cooldown_s"]
    if cooldown and last is not None and datetime.now(timezone.utc) - last < timedelta(seconds=cooldown):
        reason = f"cooldown: it last acted at {last.isoformat(timespec='seconds')}, within {cooldown:g} s"
        _finish(ws, run_id, "skipped", reason, None)
        return
    try:
        result = actions.run(ws, automation["action"], event, name)
    except Exception as exc:  # the action's failure is recorded, never raised into the runner
        _finish(ws, run_id, "failed", f"{type(exc).__name__}: {exc}", None)
        return
    failed = result.get("status") in ("FAILED", "KILLED") or result.get("passed") is False
    _finish(ws, run_id, "failed" if failed else "succeeded", None, result)


def _last_action(ws: Workspace, automation: str, other_than: int) -> datetime | None:
    """When the automation last started an action that did not skip (for its cooldown)."""
    from sqlalchemy import func, select

    from jupyter_mlops.store.automations import AutomationRunRecord
    from jupyter_mlops.store.schema import as_utc

    with ws.store.session() as session:
        moment = session.scalar(
            select(func.max(AutomationRunRecord.started_at)).where(
                AutomationRunRecord.automation == automation,
                AutomationRunRecord.id != other_than,
                AutomationRunRecord.status.in_(("running", "succeeded", "failed")),
            )
        )
    return None if moment is None else as_utc(moment)


def _finish(ws: Workspace, run_id: int, status: str, reason: str | None, result: dict[str, Any] | None) -> None:
    from jupyter_mlops.store.automations import AutomationRunRecord

    with ws.store.session() as session:
        row: AutomationRunRecord | None = session.get(AutomationRunRecord, run_id)
        if row is None:
            return
        row.status, row.reason, row.ended_at = status, reason, datetime.now(timezone.utc)
        row.result = None if result is None else json.dumps(result, default=str)
        automation, event_id, event_type = row.automation, row.event_id, row.event_type
    ws.events.emit(
        "automation.ran",
        f"automations/{automation}",
        {
            "automation": automation,
            "runId": run_id,
            "status": status,
            "reason": reason,
            "result": result,
            "eventId": event_id,
            "eventType": event_type,
        },
    )


def _advance(ws: Workspace, automation: str, seq: int) -> None:
    from sqlalchemy import update

    from jupyter_mlops.store.automations import AutomationRecord

    with ws.store.session() as session:
        session.execute(
            update(AutomationRecord)
            .where(AutomationRecord.name == automation, AutomationRecord.cursor < seq)
            .values(cursor=seq)
        )


__all__ = ["matches", "run_pending"]
