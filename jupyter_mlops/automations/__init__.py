"""Automations: the lifecycle reacting to its own events, kept in the workspace (Event Grid rules plus Logic Apps).

    mlops.automations.create("retrain-on-drift", on="drift.detected", where={"subject": "monitors/churn*"},
                             do={"pipeline": "pipeline.yaml"}, cooldown="1h")
    mlops.automations.create("gate-candidates", on="model.registered",
                             where={"data.modelTags.stage": "candidate"},
                             do={"evaluate": "${data.modelName}:${data.modelVersion}", "data": "holdout.parquet"})

An automation reads the durable event log from the moment it is created; ``runner.run_pending`` acts on new events
(see its docstring for the at-least-once, never-twice rules). Runners: ``jupyter mlops automations run``, and the
Jupyter server extension while the Lab is open. Every action is a row of ``runs(name)`` and an ``automation.ran``
event (the Lab's Events panel shows them).
"""

from __future__ import annotations

import builtins
import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from jupyter_mlops.exceptions import Conflict, InvalidInput, NotFound
from jupyter_mlops.names import check_name
from jupyter_mlops.records import Record, Records
from jupyter_mlops.workspace import default_workspace

if TYPE_CHECKING:
    from jupyter_mlops.store.automations import AutomationRecord, AutomationRunRecord
    from jupyter_mlops.workspace import Workspace

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd]?)$")
CONDITION_KEYS = ("subject", "type", "source")  # besides data.KEY[.KEY...]


@dataclass(frozen=True)
class Automation(Record):
    name: str
    on: list[str]
    where: dict[str, str]
    do: dict[str, Any]
    cooldown_s: float
    enabled: bool
    created_by: str | None
    created_at: datetime
    table_columns: ClassVar[tuple[str, ...]] = ("name", "on", "where", "do", "cooldown_s", "enabled")


@dataclass(frozen=True)
class AutomationRun(Record):
    """One action an automation took for one event: ``status`` running, succeeded, failed or skipped."""

    id: int
    automation: str
    event_id: str
    event_type: str
    status: str
    reason: str | None
    result: dict[str, Any] | None
    attempts: int
    started_at: datetime
    ended_at: datetime | None
    table_columns: ClassVar[tuple[str, ...]] = ("id", "event_type", "status", "reason", "result", "started_at")


class Automations:
    """``ws.automations``: create, list, show, delete, the actions taken, and a runner pass."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def create(
        self,
        name: str,
        *,
        on: str | list[str],
        do: dict[str, Any],
        where: dict[str, str] | None = None,
        cooldown: str | float = 0,
        base: str | Path | None = None,
    ) -> Automation:
        """A new automation; it reacts to events logged from now on. ``base``: the folder relative paths in the
        action are read from (default: the current folder)."""
        from sqlalchemy.exc import IntegrityError

        from jupyter_mlops.automations.actions import check
        from jupyter_mlops.events.envelope import EVENT_TYPES
        from jupyter_mlops.registry import current_user
        from jupyter_mlops.store.automations import AutomationRecord

        check_name(name, "automation")
        types = [on] if isinstance(on, str) else builtins.list(on)
        unknown = [t for t in types if t not in EVENT_TYPES]
        if not types or unknown:
            raise InvalidInput(
                f"on: {', '.join(unknown) or 'nothing'}: choose event types from {', '.join(EVENT_TYPES)}."
            )
        if any(t.startswith("automation.") for t in types):
            raise InvalidInput("on: an automation cannot react to automations' own events (it would loop).")
        conditions = _conditions(where or {})
        action = check(do, Path(base or Path.cwd()).resolve())
        seconds = parse_cooldown(cooldown)
        newest = self.ws.events.tail(limit=1)
        try:
            with self.ws.store.session() as session:
                record = AutomationRecord(
                    name=name,
                    types=json.dumps(types),
                    conditions=json.dumps(conditions),
                    action=json.dumps(action),
                    cooldown_s=seconds,
                    enabled=True,
                    cursor=newest[0].seq if newest else 0,
                    created_by=current_user(),
                )
                session.add(record)
                session.flush()
                return _automation(record)
        except IntegrityError:
            raise Conflict(f"An automation named {name!r} exists: delete it first or choose another name.") from None

    def list(self) -> builtins.list[Automation]:
        from sqlalchemy import select

        from jupyter_mlops.store.automations import AutomationRecord

        with self.ws.store.session() as session:
            rows = session.scalars(select(AutomationRecord).order_by(AutomationRecord.name))
            return Records(_automation(r) for r in rows)

    def get(self, name: str) -> Automation:
        from jupyter_mlops.store.automations import AutomationRecord

        with self.ws.store.session() as session:
            record = session.get(AutomationRecord, name)
            if record is None:
                raise self._unknown(name)
            return _automation(record)

    def delete(self, name: str) -> None:
        """Remove the automation (its recorded actions stay, for the audit)."""
        from jupyter_mlops.store.automations import AutomationRecord

        with self.ws.store.session() as session:
            record = session.get(AutomationRecord, name)
            if record is None:
                raise self._unknown(name)
            session.delete(record)

    def runs(self, name: str, *, limit: int = 100) -> builtins.list[AutomationRun]:
        """The actions ``name`` took, newest first."""
        from sqlalchemy import select

        from jupyter_mlops.store.automations import AutomationRunRecord

        self.get(name)
        query = select(AutomationRunRecord).where(AutomationRunRecord.automation == name)
        with self.ws.store.session() as session:
            rows = session.scalars(query.order_by(AutomationRunRecord.id.desc()).limit(limit))
            return Records(_run(r) for r in rows)

    def run_pending(self) -> builtins.list[AutomationRun]:
        """One runner pass over the log; returns the actions it took."""
        from sqlalchemy import select

        from jupyter_mlops.automations.runner import run_pending
        from jupyter_mlops.store.automations import AutomationRunRecord

        ids = run_pending(self.ws)
        if not ids:
            return Records()
        with self.ws.store.session() as session:
            rows = session.scalars(select(AutomationRunRecord).where(AutomationRunRecord.id.in_(ids)))
            return Records(_run(r) for r in rows)

    def apply(self, path: str | Path) -> builtins.list[Automation]:
        """Create the automations of an ``automations.yaml`` (a list of ``name, on, where, do, cooldown``),
        replacing those of the same names; paths in actions are relative to the file."""
        import yaml

        source = Path(path).expanduser().resolve()
        if not source.is_file():
            raise InvalidInput(f"No automations file at {source}.", path=str(source))
        items = yaml.safe_load(source.read_text()) or []
        if not isinstance(items, builtins.list) or not all(isinstance(i, dict) for i in items):
            raise InvalidInput(f"{source}: write a list of automations, each with name, on, do (where, cooldown).")
        items = [{"on" if k is True else k: v for k, v in i.items()} for i in items]  # YAML 1.1 reads `on` as true
        for index, item in enumerate(items):
            missing = [k for k in ("name", "on", "do") if k not in item]
            extra = sorted(set(item) - {"name", "on", "do", "where", "cooldown"})
            if missing or extra:
                raise InvalidInput(f"{source}: automation {index + 1}: missing {missing}, unknown keys {extra}.")
        created = []
        for item in items:
            if any(a.name == item["name"] for a in self.list()):
                self.delete(item["name"])
            created.append(self.create(**{**item, "base": source.parent}))
        return Records(created)

    def _unknown(self, name: str) -> NotFound:
        names = [a.name for a in self.list()]
        return NotFound(f"No automation named {name!r}; automations: {', '.join(names) or 'none'}.", names=names)


def parse_cooldown(value: str | float) -> float:
    """``"1h"``, ``"15m"``, ``"30s"``, ``"1d"``, or seconds; 0 for none."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value).strip())
        if not match:
            raise InvalidInput(f"Cannot read the cooldown {value!r}: write a number and a unit, e.g. 30s, 15m, 1h.")
        seconds = float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    if seconds < 0:
        raise InvalidInput(f"The cooldown is 0 or more seconds, not {value!r}.")
    return seconds


def _conditions(where: dict[str, str]) -> dict[str, str]:
    if not isinstance(where, dict):
        raise InvalidInput('where is a dict of field to glob, e.g. {"subject": "models/churn/*"}.')
    for key, pattern in where.items():
        if key not in CONDITION_KEYS and not str(key).startswith("data."):
            raise InvalidInput(f"where: {key!r} is not an event field; use {', '.join(CONDITION_KEYS)} or data.KEY.")
        if not isinstance(pattern, str):
            raise InvalidInput(f"where: {key} is matched against a glob text, not {pattern!r}.")
    return {str(k): v for k, v in where.items()}


def _automation(record: AutomationRecord) -> Automation:
    from jupyter_mlops.store.schema import as_utc

    return Automation(
        name=record.name,
        on=json.loads(record.types),
        where=json.loads(record.conditions),
        do=json.loads(record.action),
        cooldown_s=record.cooldown_s,
        enabled=record.enabled,
        created_by=record.created_by,
        created_at=as_utc(record.created_at),
    )


def _run(record: AutomationRunRecord) -> AutomationRun:
    from jupyter_mlops.store.schema import as_utc

    return AutomationRun(
        id=record.id,
        automation=record.automation,
        event_id=record.event_id,
        event_type=record.event_type,
        status=record.status,
        reason=record.reason,
        result=None if record.result is None else json.loads(record.result),
        attempts=record.attempts,
        started_at=as_utc(record.started_at),
        ended_at=None if record.ended_at is None else as_utc(record.ended_at),
    )


def _service(workspace: Workspace | None) -> Automations:
    return (workspace or default_workspace()).automations


def create(name: str, *, workspace: Workspace | None = None, **kwargs: Any) -> Automation:
    """See :meth:`Automations.create`."""
    return _service(workspace).create(name, **kwargs)


def list(*, workspace: Workspace | None = None) -> builtins.list[Automation]:
    return _service(workspace).list()


def get(name: str, *, workspace: Workspace | None = None) -> Automation:
    return _service(workspace).get(name)


def delete(name: str, *, workspace: Workspace | None = None) -> None:
    _service(workspace).delete(name)


def runs(name: str, *, workspace: Workspace | None = None, limit: int = 100) -> builtins.list[AutomationRun]:
    return _service(workspace).runs(name, limit=limit)


def run_pending(*, workspace: Workspace | None = None) -> builtins.list[AutomationRun]:
    return _service(workspace).run_pending()


def apply(path: str | Path, *, workspace: Workspace | None = None) -> builtins.list[Automation]:
    return _service(workspace).apply(path)


__all__ = [
    "Automation",
    "AutomationRun",
    "Automations",
    "apply",
    "create",
    "delete",
    "get",
    "list",
    "parse_cooldown",
    "run_pending",
    "runs",
]
