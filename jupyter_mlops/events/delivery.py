"""Delivery of logged events to subscribers: claim what is due, send, record the outcome.

At least once: a delivery is claimed with a lease before sending, so a process that dies mid-way leaves it to
be retried when the lease runs out; receivers deduplicate on the event id (the ``webhook-id`` header). Failures
back off exponentially; after ``max_attempts`` the delivery is dead-lettered (``replay`` queues it again).

In order, per subscription: only the oldest pending delivery of a subscription (its head) is retried while it
fails, and the ones behind it wait, so a subscriber that comes back receives its events in the order they
happened (and a subscriber that is down gets one attempt per back-off, not one per event).
"""

from __future__ import annotations

import atexit
import json
import logging
import smtplib
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from jupyter_mlops.events.envelope import Event, structured_http
from jupyter_mlops.store.schema import as_utc

if TYPE_CHECKING:
    from jupyter_mlops.events import Events
    from jupyter_mlops.store.events import DeliveryRecord, SubscriptionRecord

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=60)
BATCH = 500
MAX_BACKOFF_S = 300.0
EXIT_FLUSH_S = 5.0


def backoff(attempts: int) -> timedelta:
    """0.5 s, 1 s, 2 s, ... capped at five minutes."""
    return timedelta(seconds=min(MAX_BACKOFF_S, 0.5 * 2 ** max(0, attempts - 1)))


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Deliverer:
    """Sends due deliveries, in the background of the emitting process or on demand (``deliver``)."""

    def __init__(self, events: Events) -> None:
        self.events = events
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._http: Any = None
        self._signers: dict[str, Any] = {}

    # -- background ---------------------------------------------------------------------------------------------
    def wake(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="mlops-event-delivery", daemon=True)
                self._thread.start()
                atexit.register(self.flush, EXIT_FLUSH_S)
        self._wake.set()

    def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                next_due = self.deliver_due()
            except Exception:  # the store may be briefly unavailable: try again later
                log.exception("event delivery failed; retrying in 5 s")
                next_due = _now() + timedelta(seconds=5)
            wait = 30.0 if next_due is None else max(0.05, (next_due - _now()).total_seconds())
            self._wake.wait(timeout=min(wait, 30.0))

    def flush(self, timeout: float) -> None:
        """Deliver whatever is due now before the process exits (bounded), so a short script loses nothing."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            next_due = self.deliver_due()
            if next_due is None or next_due > _now() + timedelta(seconds=max(0.0, deadline - time.monotonic())):
                return
            time.sleep(max(0.0, min(0.2, (next_due - _now()).total_seconds())))

    # -- one pass -----------------------------------------------------------------------------------------------
    def deliver_due(self) -> datetime | None:
        """Send every due delivery; returns when the next pending one is due (None: nothing pending)."""
        with self._send_lock:
            while True:
                claimed = self._claim()
                if not claimed:
                    break
                outcomes: list[tuple[int, str | None]] = []
                held_back: list[int] = []
                failed: set[int] = set()
                for delivery_id, sub, event in claimed:
                    if sub.id in failed:  # keep the order: what follows a failure waits for it
                        held_back.append(delivery_id)
                        continue
                    error = self._send(sub, event)
                    outcomes.append((delivery_id, error))
                    if error is not None:
                        failed.add(sub.id)
                self._record(outcomes, held_back, {d: s for d, s, _ in claimed})
            return self._next_due()

    def _heads(self, session: Any) -> Any:
        """Each subscription's oldest pending delivery: (subscription id, next attempt, lease) rows."""
        from sqlalchemy import and_, func, select

        from jupyter_mlops.store.events import DeliveryRecord, SubscriptionRecord

        head = (
            select(DeliveryRecord.subscription_id, func.min(DeliveryRecord.event_seq).label("seq"))
            .where(DeliveryRecord.status == "pending")
            .group_by(DeliveryRecord.subscription_id)
            .subquery()
        )
        query = (
            select(DeliveryRecord.subscription_id, DeliveryRecord.next_attempt_at, DeliveryRecord.lease_until)
            .join(
                head,
                and_(DeliveryRecord.subscription_id == head.c.subscription_id, DeliveryRecord.event_seq == head.c.seq),
            )
            .join(SubscriptionRecord, DeliveryRecord.subscription_id == SubscriptionRecord.id)
            .where(SubscriptionRecord.active.is_(True))
        )
        callbacks = set(self.events.callbacks)  # only the process holding a callback can call it
        query = query.where((SubscriptionRecord.kind != "callback") | SubscriptionRecord.target.in_(callbacks))
        return session.execute(query).all()

    def _claim(self) -> list[tuple[int, SubscriptionRecord, Event]]:
        from sqlalchemy import or_, select, update

        from jupyter_mlops.store.events import DeliveryRecord, EventRecord, SubscriptionRecord

        now = _now()
        with self.events.ws.store.session() as session:
            ready = [
                sub_id
                for sub_id, due, lease in self._heads(session)
                if as_utc(due) <= now and (lease is None or as_utc(lease) < now)
            ]
            if not ready:
                return []
            rows = session.execute(
                select(DeliveryRecord.id, SubscriptionRecord, EventRecord)
                .join(SubscriptionRecord, DeliveryRecord.subscription_id == SubscriptionRecord.id)
                .join(EventRecord, DeliveryRecord.event_seq == EventRecord.seq)
                .where(
                    DeliveryRecord.status == "pending",
                    DeliveryRecord.subscription_id.in_(ready),
                    or_(DeliveryRecord.lease_until.is_(None), DeliveryRecord.lease_until < now),
                )
                .order_by(DeliveryRecord.event_seq)
                .limit(BATCH)
            ).all()
            if not rows:
                return []
            lease = now + LEASE
            session.execute(
                update(DeliveryRecord)
                .where(
                    DeliveryRecord.id.in_([row[0] for row in rows]),
                    DeliveryRecord.status == "pending",
                    or_(DeliveryRecord.lease_until.is_(None), DeliveryRecord.lease_until < now),
                )
                .values(lease_until=lease)
                .execution_options(synchronize_session=False)
            )
            # another process may have claimed some first: keep the rows that carry our lease
            ours = set(
                session.scalars(
                    select(DeliveryRecord.id).where(
                        DeliveryRecord.id.in_([row[0] for row in rows]), DeliveryRecord.lease_until == lease
                    )
                )
            )
            claimed = [(d, sub, self.events.to_event(event)) for d, sub, event in rows if d in ours]
        return claimed

    def _record(
        self, outcomes: list[tuple[int, str | None]], held_back: list[int], subs: dict[int, SubscriptionRecord]
    ) -> None:
        from sqlalchemy import update

        from jupyter_mlops.store.events import DeliveryRecord

        now = _now()
        with self.events.ws.store.session() as session:
            delivered = [d for d, error in outcomes if error is None]
            if delivered:
                session.execute(
                    update(DeliveryRecord)
                    .where(DeliveryRecord.id.in_(delivered))
                    .values(status="delivered", delivered_at=now, lease_until=None, last_error=None)
                    .execution_options(synchronize_session=False)
                )
            if held_back:
                session.execute(
                    update(DeliveryRecord)
                    .where(DeliveryRecord.id.in_(held_back))
                    .values(lease_until=None)
                    .execution_options(synchronize_session=False)
                )
            for delivery_id, error in outcomes:
                if error is None:
                    continue
                record: DeliveryRecord = session.get(DeliveryRecord, delivery_id)
                record.attempts += 1
                record.last_error = error[:2000]
                record.lease_until = None
                if record.attempts >= subs[delivery_id].max_attempts:
                    record.status = "dead"
                    log.warning("event delivery to %s dead-lettered: %s", subs[delivery_id].name, error)
                else:
                    record.next_attempt_at = now + backoff(record.attempts)

    def _next_due(self) -> datetime | None:
        """When the earliest head can be tried: its next attempt, or the end of another process's lease on it."""
        with self.events.ws.store.session() as session:
            moments = [
                max(as_utc(due), as_utc(lease)) if lease is not None else as_utc(due)
                for _, due, lease in self._heads(session)
            ]
        return min(moments, default=None)

    # -- transports ---------------------------------------------------------------------------------------------
    def _send(self, sub: SubscriptionRecord, event: Event) -> str | None:
        """Deliver one event; None on success, else the reason (kept in the delivery log)."""
        try:
            if sub.kind == "webhook":
                return self._send_webhook(sub, event)
            if sub.kind == "email":
                return self._send_email(sub, event)
            if sub.kind == "callback":
                callback: Callable[[Event], Any] = self.events.callbacks[sub.target]
                callback(event)
                return None
            return f"unknown subscription kind {sub.kind!r}"
        except Exception as exc:  # any failure of a subscriber is recorded and retried, never raised
            return f"{type(exc).__name__}: {exc}"

    def _send_webhook(self, sub: SubscriptionRecord, event: Event) -> str | None:
        if self._http is None:
            import urllib3

            self._http = urllib3.PoolManager(maxsize=4, retries=False, timeout=urllib3.Timeout(total=10))
        headers, body = structured_http(event)
        timestamp = _now()
        headers.update(
            {
                "webhook-id": event.id,
                "webhook-timestamp": str(int(timestamp.timestamp())),
                "webhook-signature": self._signer(sub.secret).sign(event.id, timestamp, body.decode()),
            }
        )
        response = self._http.request("POST", sub.target, body=body, headers=headers)
        if 200 <= response.status < 300:
            return None
        return f"HTTP {response.status}: {response.data[:200].decode(errors='replace')}"

    def _signer(self, secret: str) -> Any:
        signer = self._signers.get(secret)
        if signer is None:
            from standardwebhooks import Webhook

            signer = self._signers[secret] = Webhook(secret)
        return signer

    def _send_email(self, sub: SubscriptionRecord, event: Event) -> str | None:
        options = json.loads(sub.options or "{}")
        host, _, port = options.get("smtp", "localhost:25").partition(":")
        message = EmailMessage()
        message["From"] = options.get("sender", "jupyter-mlops@localhost")
        message["To"] = sub.target
        message["Subject"] = f"[jupyter-mlops] {event.type}: {event.subject}"
        message["Message-ID"] = f"<{event.id}@jupyter-mlops>"
        message.set_content(json.dumps(event.to_cloudevent(), indent=2))
        with smtplib.SMTP(host, int(port or 25), timeout=10) as smtp:
            smtp.send_message(message)
        return None
