"""Lifecycle events: a durable log in the metadata store, subscriptions, and at-least-once delivery.

    mlops.events.subscribe("ops", webhook="https://ops.example/hook", types=["model.registered"])
    mlops.events.subscribe("me", callback=print, types=["run.failed"])

The log is the source of truth: an event is written before anyone is told, delivery reads from the log, and
what a process could not deliver is picked up by the next one (or by ``jupyter mlops events deliver``).
"""

from __future__ import annotations

import base64
import fnmatch
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from jupyter_mlops.events.envelope import EVENT_TYPES, Event, dumps, new_event
from jupyter_mlops.exceptions import Conflict, InvalidInput, NotFound
from jupyter_mlops.names import check_name
from jupyter_mlops.records import Record

if TYPE_CHECKING:
    from jupyter_mlops.events.delivery import Deliverer
    from jupyter_mlops.store.events import EventRecord, SubscriptionRecord
    from jupyter_mlops.workspace import Workspace

log = logging.getLogger(__name__)

__all__ = [
    "EVENT_TYPES",
    "Delivery",
    "Event",
    "Events",
    "Subscription",
    "deliver",
    "replay",
    "subscribe",
    "subscriptions",
    "tail",
    "unsubscribe",
]


@dataclass(frozen=True)
class Subscription(Record):
    name: str
    kind: str
    target: str
    types: list[str]
    subject: str
    secret: str
    max_attempts: int
    created_at: datetime | None
    table_columns: ClassVar[tuple[str, ...]] = ("name", "kind", "target", "types", "subject", "created_at")


@dataclass(frozen=True)
class Delivery(Record):
    subscription: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    last_error: str | None
    delivered_at: datetime | None


class Events:
    """The event log of one workspace, its subscriptions and their delivery."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.source = f"/jupyter-mlops/{ws.tracking_uri}"
        self.callbacks: dict[str, Callable[[Event], Any]] = {}
        self._deliverer: Deliverer | None = None
        self._lock = threading.Lock()

    @property
    def deliverer(self) -> Deliverer:
        with self._lock:
            if self._deliverer is None:
                from jupyter_mlops.events.delivery import Deliverer

                self._deliverer = Deliverer(self)
            return self._deliverer

    # -- emit ---------------------------------------------------------------------------------------------------
    def emit(self, type: str, subject: str, data: dict[str, Any]) -> Event | None:
        """Log an event and queue it for every matching subscription; delivery starts in the background.

        Never raises into the change that caused it: if the log cannot be written, the event is logged as a
        warning with its whole content instead.
        """
        event = new_event(type, subject, data, self.source)
        try:
            queued = self._append(event)
        except Exception:
            log.warning("could not write event %s to the event log", json.dumps(event.to_cloudevent()), exc_info=True)
            return None
        if queued:
            self.deliverer.wake()
        return event

    def _append(self, event: Event) -> int:
        from sqlalchemy import select

        from jupyter_mlops.store.events import DeliveryRecord, EventRecord, SubscriptionRecord

        with self.ws.store.session() as session:
            record = EventRecord(
                id=event.id,
                type=event.type,
                source=event.source,
                subject=event.subject,
                time=event.time,
                data=dumps(event.data),
            )
            session.add(record)
            session.flush()
            subs = session.scalars(select(SubscriptionRecord).where(SubscriptionRecord.active.is_(True))).all()
            matching = [s for s in subs if _matches(s, event)]
            for sub in matching:
                session.add(DeliveryRecord(subscription_id=sub.id, event_seq=record.seq, next_attempt_at=event.time))
            return len(matching)

    # -- subscriptions ------------------------------------------------------------------------------------------
    def subscribe(
        self,
        name: str,
        *,
        webhook: str | None = None,
        callback: Callable[[Event], Any] | None = None,
        email: str | None = None,
        types: list[str] | None = None,
        subject: str = "*",
        secret: str | None = None,
        max_attempts: int = 8,
        smtp: str | None = None,
    ) -> Subscription:
        """Subscribe ``name`` to events of ``types`` (all when empty) whose subject matches the glob ``subject``.

        Exactly one of ``webhook`` (signed POSTs), ``callback`` (a function in this process) or ``email``.
        A callback subscription of the same name is re-bound to the new function, and receives what it missed.
        """
        check_name(name, "subscription")
        from sqlalchemy import select

        from jupyter_mlops.store.events import SubscriptionRecord

        targets = {"webhook": webhook, "callback": callback, "email": email}
        given = {k: v for k, v in targets.items() if v is not None}
        if len(given) != 1:
            raise InvalidInput("Give exactly one of webhook=URL, callback=function or email=ADDRESS.")
        kind, target = next(iter(given.items()))
        unknown = sorted(set(types or []) - set(EVENT_TYPES))
        if unknown:
            raise InvalidInput(f"Unknown event type(s) {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}.")
        if kind == "webhook" and not str(target).startswith(("http://", "https://")):
            raise InvalidInput(f"webhook must be an http(s) URL, not {target!r}.")
        if kind == "email" and "@" not in str(target):
            raise InvalidInput(f"email must be an address, not {target!r}.")
        if max_attempts < 1:
            raise InvalidInput("max_attempts must be at least 1.")
        if kind == "callback":
            if not callable(target):
                raise InvalidInput("callback must be a function taking one Event.")
            self.callbacks[name] = target
            target = name
        options = {"smtp": smtp or os.environ.get("MLOPS_SMTP", "localhost:25")} if kind == "email" else {}
        with self.ws.store.session() as session:
            existing = session.scalar(select(SubscriptionRecord).where(SubscriptionRecord.name == name))
            if existing is not None and not (existing.kind == "callback" == kind):
                raise Conflict(f"A subscription named {name!r} exists ({existing.kind}); unsubscribe it first.")
            record = existing or SubscriptionRecord(name=name, kind=kind, target=str(target))
            record.types = json.dumps(sorted(types or []))
            record.subject = subject
            if secret or not record.secret:
                record.secret = secret or _new_secret()
            record.options = json.dumps(options)
            record.max_attempts = max_attempts
            record.active = True
            session.add(record)
            session.flush()
            result = _subscription(record)
        if kind == "callback":
            self.deliverer.wake()  # deliver what it missed
        return result

    def unsubscribe(self, name: str) -> None:
        from sqlalchemy import select

        from jupyter_mlops.store.events import SubscriptionRecord

        with self.ws.store.session() as session:
            record = session.scalar(select(SubscriptionRecord).where(SubscriptionRecord.name == name))
            if record is None:
                raise self._unknown(name)
            session.delete(record)
        self.callbacks.pop(name, None)

    def subscriptions(self) -> list[Subscription]:
        from sqlalchemy import select

        from jupyter_mlops.store.events import SubscriptionRecord

        with self.ws.store.session() as session:
            return [
                _subscription(r) for r in session.scalars(select(SubscriptionRecord).order_by(SubscriptionRecord.name))
            ]

    # -- reading ------------------------------------------------------------------------------------------------
    def tail(self, *, types: list[str] | None = None, after: int | None = None, limit: int = 50) -> list[Event]:
        """The newest ``limit`` events (oldest first), or those after sequence number ``after``."""
        from sqlalchemy import select

        from jupyter_mlops.store.events import EventRecord

        query = select(EventRecord)
        if types:
            query = query.where(EventRecord.type.in_(types))
        if after is not None:
            query = query.where(EventRecord.seq > after).order_by(EventRecord.seq).limit(limit)
            with self.ws.store.session() as session:
                return [self.to_event(r) for r in session.scalars(query)]
        with self.ws.store.session() as session:
            rows = list(session.scalars(query.order_by(EventRecord.seq.desc()).limit(limit)))
        return [self.to_event(r) for r in reversed(rows)]

    def seq_of(self, event_id: str) -> int | None:
        """The sequence number of the logged event with id ``event_id`` (None when it is not in the log)."""
        from sqlalchemy import select

        from jupyter_mlops.store.events import EventRecord

        with self.ws.store.session() as session:
            return session.scalar(select(EventRecord.seq).where(EventRecord.id == event_id))

    def deliveries(self, name: str, *, status: str | None = None, limit: int = 100) -> list[Delivery]:
        from sqlalchemy import select

        from jupyter_mlops.store.events import DeliveryRecord, EventRecord, SubscriptionRecord

        with self.ws.store.session() as session:
            sub = session.scalar(select(SubscriptionRecord).where(SubscriptionRecord.name == name))
            if sub is None:
                raise self._unknown(name)
            query = (
                select(DeliveryRecord, EventRecord)
                .join(EventRecord, DeliveryRecord.event_seq == EventRecord.seq)
                .where(DeliveryRecord.subscription_id == sub.id)
                .order_by(DeliveryRecord.event_seq.desc())
                .limit(limit)
            )
            if status:
                query = query.where(DeliveryRecord.status == status)
            return [
                Delivery(name, e.id, e.type, d.status, d.attempts, d.last_error, d.delivered_at)
                for d, e in session.execute(query)
            ]

    # -- delivery -----------------------------------------------------------------------------------------------
    def deliver(self, *, timeout: float = 0.0) -> int:
        """Deliver what is due now (and, with ``timeout``, retries falling due within it); returns what is left."""
        if timeout > 0:
            self.deliverer.flush(timeout)
        else:
            self.deliverer.deliver_due()
        return self.pending_count()

    def pending_count(self) -> int:
        from sqlalchemy import func, select

        from jupyter_mlops.store.events import DeliveryRecord

        with self.ws.store.session() as session:
            return session.scalar(select(func.count()).where(DeliveryRecord.status == "pending")) or 0

    def start_background(self) -> None:
        """Deliver pending events (e.g. left by a crashed process) in a background thread of this process."""
        self.deliverer.wake()

    def replay(self, name: str, *, since: int | None = None, dead_only: bool = False) -> int:
        """Queue events again for subscription ``name``: its dead letters, or every matching event after ``since``."""
        from sqlalchemy import select

        from jupyter_mlops.store.events import DeliveryRecord, EventRecord, SubscriptionRecord

        now = _utcnow()
        with self.ws.store.session() as session:
            sub = session.scalar(select(SubscriptionRecord).where(SubscriptionRecord.name == name))
            if sub is None:
                raise self._unknown(name)
            existing = {
                d.event_seq: d
                for d in session.scalars(select(DeliveryRecord).where(DeliveryRecord.subscription_id == sub.id))
            }
            count = 0
            if dead_only:
                targets = [d for d in existing.values() if d.status == "dead"]
            else:
                events = session.scalars(
                    select(EventRecord).where(EventRecord.seq > (since or 0)).order_by(EventRecord.seq)
                )
                targets = []
                for event in events:
                    if not _matches(sub, self.to_event(event)):
                        continue
                    delivery = existing.get(event.seq)
                    if delivery is None:
                        delivery = DeliveryRecord(subscription_id=sub.id, event_seq=event.seq)
                        session.add(delivery)
                    targets.append(delivery)
            for delivery in targets:
                delivery.status, delivery.attempts, delivery.next_attempt_at = "pending", 0, now
                delivery.lease_until, delivery.last_error, delivery.delivered_at = None, None, None
                count += 1
        if count:
            self.deliverer.wake()
        return count

    # -- helpers ------------------------------------------------------------------------------------------------
    @staticmethod
    def to_event(record: EventRecord) -> Event:
        from jupyter_mlops.store.schema import as_utc

        return Event(
            id=record.id,
            source=record.source,
            type=record.type,
            subject=record.subject,
            time=as_utc(record.time),
            data=json.loads(record.data),
            seq=record.seq,
        )

    def _unknown(self, name: str) -> NotFound:
        names = [s.name for s in self.subscriptions()]
        return NotFound(f"No subscription named {name!r}; subscriptions: {', '.join(names) or 'none'}.", names=names)


def _matches(sub: SubscriptionRecord, event: Event) -> bool:
    types = json.loads(sub.types or "[]")
    return (not types or event.type in types) and fnmatch.fnmatchcase(event.subject, sub.subject or "*")


def _subscription(record: SubscriptionRecord) -> Subscription:
    return Subscription(
        name=record.name,
        kind=record.kind,
        target=record.target,
        types=json.loads(record.types or "[]"),
        subject=record.subject,
        secret=record.secret,
        max_attempts=record.max_attempts,
        created_at=record.created_at,
    )


def _new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _utcnow() -> datetime:
    from jupyter_mlops.events.delivery import _now

    return _now()


# -- module-level verbs on the default workspace --------------------------------------------------------------------
def _events(workspace: Workspace | None) -> Events:
    from jupyter_mlops.workspace import default_workspace

    return (workspace or default_workspace()).events


def subscribe(name: str, *, workspace: Workspace | None = None, **kwargs: Any) -> Subscription:
    return _events(workspace).subscribe(name, **kwargs)


def unsubscribe(name: str, *, workspace: Workspace | None = None) -> None:
    _events(workspace).unsubscribe(name)


def subscriptions(*, workspace: Workspace | None = None) -> list[Subscription]:
    return _events(workspace).subscriptions()


def tail(*, workspace: Workspace | None = None, **kwargs: Any) -> list[Event]:
    return _events(workspace).tail(**kwargs)


def replay(name: str, *, workspace: Workspace | None = None, **kwargs: Any) -> int:
    return _events(workspace).replay(name, **kwargs)


def deliver(*, workspace: Workspace | None = None, timeout: float = 0.0) -> int:
    return _events(workspace).deliver(timeout=timeout)
