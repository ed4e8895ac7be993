"""The event feed of the server: CloudEvents-shaped lifecycle events, fanned out to server-sent-event streams.

Sources: changes made through the REST API (published at once), and the workspace's durable event log (runs,
endpoints, deployments, drift, pipelines), followed while a client listens.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from jupyter_mlops.server.models import CloudEvent

if TYPE_CHECKING:
    from jupyter_mlops.workspace import Workspace

log = logging.getLogger(__name__)
SOURCE = "/jupyter-mlops/server"


class EventBus:
    """Keeps the last ``history`` events and hands each new one to every subscriber queue (one event loop)."""

    def __init__(self, history: int = 200) -> None:
        self._history: collections.deque[CloudEvent] = collections.deque(maxlen=history)
        self._subscribers: set[asyncio.Queue[Any]] = set()
        self._prefix = uuid.uuid4().hex[:8]
        self._counter = itertools.count(1)

    def publish(self, type: str, *, subject: str | None = None, data: dict[str, Any] | None = None) -> CloudEvent:
        event = CloudEvent(
            id=f"{self._prefix}-{next(self._counter)}",
            source=SOURCE,
            type=type,
            time=datetime.now(timezone.utc).isoformat(),
            subject=subject,
            data=data or {},
        )
        self._history.append(event)
        for queue in list(self._subscribers):
            queue.put_nowait(event)
        return event

    def forward(self, event: Any) -> CloudEvent:
        """Publish an event of the durable log with its own id, time and source."""
        cloud = CloudEvent(
            id=event.id,
            source=event.source,
            type=event.type,
            time=event.time.isoformat(),
            subject=event.subject,
            data=event.data,
        )
        self._history.append(cloud)
        for queue in list(self._subscribers):
            queue.put_nowait(cloud)
        return cloud

    def recent(self, after: str | None = None, limit: int = 100) -> list[CloudEvent]:
        """The kept events after the one with id ``after`` (all kept ones when it is unknown or None)."""
        events = list(self._history)
        if after is not None:
            ids = [e.id for e in events]
            if after in ids:
                events = events[ids.index(after) + 1 :]
        return events[-limit:] if limit else []

    def subscribe(self) -> asyncio.Queue[Any]:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Any]) -> None:
        self._subscribers.discard(queue)

    @property
    def listening(self) -> bool:
        return bool(self._subscribers)


class LogFollower:
    """Forwards the durable event log (runs, deployments, drift, ...) to the bus while a client listens.

    The REST handlers publish their own model changes at once, so those types are not forwarded twice.
    """

    PUBLISHED_BY_HANDLERS = frozenset({"model.registered", "model.alias_changed", "model.deleted", "model.updated"})

    def __init__(self, ws: Workspace, bus: EventBus, *, interval: float = 1.0) -> None:
        self.ws = ws
        self.bus = bus
        self.interval = interval
        self._after: int | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_event_loop().create_task(self._loop())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _loop(self) -> None:
        loop = asyncio.get_event_loop()
        if self._after is None:  # from now on: what happened before is in the log for whoever asks
            newest = await loop.run_in_executor(None, lambda: self.ws.events.tail(limit=1))
            self._after = newest[-1].seq if newest else 0
        while True:
            await asyncio.sleep(self.interval)
            if not self.bus.listening:
                continue
            try:
                events = await loop.run_in_executor(None, lambda: self.ws.events.tail(after=self._after, limit=500))
            except Exception as exc:  # a store hiccup must not stop the follower
                log.debug("event log follower: %s", exc)
                continue
            for event in events:
                self._after = event.seq
                if event.type not in self.PUBLISHED_BY_HANDLERS:
                    self.bus.forward(event)
