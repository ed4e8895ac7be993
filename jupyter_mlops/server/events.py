"""The Lab's live stream: the workspace's durable event log, forwarded to server-sent-event streams.

There is one event path: the core writes every lifecycle event into the durable log, whichever face or process
made the change (a kernel, the CLI, a widget, a REST call, another machine on the shared store). The server adds
nothing of its own; it follows the log while a client listens and fans each new event out to the open streams.
A handler that changed something nudges the follower, so the change shows at once instead of at the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from jupyter_mlops.server.models import CloudEvent

if TYPE_CHECKING:
    from jupyter_mlops.events.envelope import Event
    from jupyter_mlops.workspace import Workspace

log = logging.getLogger(__name__)


def cloud_event(event: Event) -> CloudEvent:
    """The REST shape of a logged event (its own id, time, source and data)."""
    return CloudEvent(
        id=event.id,
        source=event.source,
        type=event.type,
        time=event.time.isoformat(),
        subject=event.subject,
        data=event.data,
    )


def recent(ws: Workspace, *, after: str | None = None, limit: int = 100) -> list[CloudEvent]:
    """The newest ``limit`` events of the log, or those after the event with id ``after`` (oldest first)."""
    if limit <= 0:
        return []
    seq = ws.events.seq_of(after) if after else None
    events = ws.events.tail(after=seq, limit=limit) if seq is not None else ws.events.tail(limit=limit)
    return [cloud_event(e) for e in events]


class EventBus:
    """Hands each forwarded event to every subscriber queue (one event loop)."""

    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[Any]] = set()

    def forward(self, event: Event) -> CloudEvent:
        cloud = cloud_event(event)
        for queue in list(self._subscribers):
            queue.put_nowait(cloud)
        return cloud

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
    """Reads the durable event log every ``interval`` seconds while a client listens, and at once when nudged."""

    def __init__(self, ws: Workspace, bus: EventBus, *, interval: float = 1.0) -> None:
        self.ws = ws
        self.bus = bus
        self.interval = interval
        self._after: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None

    async def start(self) -> None:
        """Start following from the newest event of the log (once; later calls return at once)."""
        if self._task is not None:
            return
        loop = asyncio.get_event_loop()
        self._wake = asyncio.Event()
        self._task = loop.create_task(self._loop())
        if self._after is None:  # from now on: what happened before is in the log for whoever asks
            newest = await loop.run_in_executor(None, lambda: self.ws.events.tail(limit=1))
            self._after = newest[-1].seq if newest else 0
        self._wake.set()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def nudge(self) -> None:
        """Read the log now (called on the server's event loop by a handler that wrote something)."""
        if self._wake is not None:
            self._wake.set()

    async def _loop(self) -> None:
        loop = asyncio.get_event_loop()
        assert self._wake is not None
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            self._wake.clear()
            if not self.bus.listening or self._after is None:
                continue
            try:
                events = await loop.run_in_executor(None, lambda: self.ws.events.tail(after=self._after, limit=500))
            except Exception as exc:  # a store hiccup must not stop the follower
                log.debug("event log follower: %s", exc)
                continue
            for event in events:
                self._after = event.seq
                self.bus.forward(event)
