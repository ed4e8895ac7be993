"""The data plane: a Starlette app scoring requests with whatever routing table it is given.

The endpoint's router (which follows the metadata store, see ``router.py``) and a standalone deployment process
(the container entrypoint, see ``serve.py``) serve the same app, so a deployment answers the same way wherever it
runs. The table is replaced whole, never mutated: a traffic switch or a replaced deployment is one assignment and
never drops a request.

What a client sends never makes a 5xx: every refusal is a 4xx with a JSON body ``{"message": ...}`` (a wrong
method too: 405), and a body that never finishes is answered 408 after ``MLOPS_BODY_TIMEOUT_S``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops.deploy.metrics import Metrics
from jupyter_mlops.exceptions import MlopsError

if TYPE_CHECKING:
    from jupyter_mlops.deploy.forward import Upstream
    from jupyter_mlops.deploy.scoring import Scorer

log = logging.getLogger("jupyter_mlops.router")
DEPLOYMENT_HEADER = "mlops-model-deployment"
REQUEST_ID_HEADER = "mlops-request-id"  # given by the caller, or made here; labels arriving later refer to it
YIELD_EVERY = 32  # collected lines built between two yields of the GIL
BODY_TIMEOUT_ENV = "MLOPS_BODY_TIMEOUT_S"  # seconds a request body may take to arrive; read when a process starts
DEFAULT_BODY_TIMEOUT_S = 30.0
CLOSE = {"connection": "close"}  # a body left unread: the connection cannot carry another request


def body_timeout_from_env() -> float:
    """``MLOPS_BODY_TIMEOUT_S`` as this process found it at start (a positive number), else 30 s."""
    raw = os.environ.get(BODY_TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_BODY_TIMEOUT_S
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        log.warning(
            "%s=%r is not a positive number of seconds: using %g", BODY_TIMEOUT_ENV, raw, DEFAULT_BODY_TIMEOUT_S
        )
        return DEFAULT_BODY_TIMEOUT_S
    return value


class BodyDeadlines:
    """Request bodies being read, each with its deadline; a sweep a few times per timeout cancels the late ones.

    One sweeping task instead of a timer per request: arming and cancelling an asyncio timeout per request costs
    several times the dict write this costs on the hot path."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.reading: dict[asyncio.Task[Any], float] = {}
        self.expired: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def arm(self, task: asyncio.Task[Any]) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        self.reading[task] = time.monotonic() + self.timeout_s

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.timeout_s / 4))
            now = time.monotonic()
            for task, deadline in list(self.reading.items()):
                if deadline <= now:
                    del self.reading[task]
                    self.expired.add(task)
                    task.cancel()


@dataclass
class Served:
    """One deployment as the data plane sees it: scored in process, or forwarded to its own process."""

    name: str
    model: str  # name:version
    scorer: Scorer | None
    collect: bool
    request_timeout_s: float = 60.0
    max_body_bytes: int = 10 * 1024 * 1024
    upstream: Upstream | None = None
    log: logging.Logger = field(default_factory=lambda: log)


@dataclass
class Table:
    """What the app serves; replaced whole, never mutated."""

    version: int = 0
    served: dict[str, Served] = field(default_factory=dict)
    live: list[tuple[str, float]] = field(default_factory=list)  # (deployment, cumulative percent)
    mirror: tuple[str, int] | None = None
    auth_key: str | None = None

    def pick(self) -> str | None:
        if not self.live:
            return None
        draw = random.random() * 100
        for name, upto in self.live:
            if draw < upto:
                return name
        return self.live[-1][0]


def live_shares(traffic: dict[str, int], served: dict[str, Served]) -> list[tuple[str, float]]:
    """Cumulative shares of the deployments that receive traffic and are loaded."""
    live, total = [], 0
    for name, percent in traffic.items():
        if percent > 0 and name in served:
            total += percent
            live.append((name, total))
    return [(name, upto * 100 / total) for name, upto in live] if total else []


class Collector:
    """Appends inputs and outputs as JSON lines, off the request path, one file per deployment and day."""

    def __init__(self, folder: Path, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._queue: queue.SimpleQueue[tuple[str, tuple[float, bytes, str, str, bool]]] = queue.SimpleQueue()
        threading.Thread(target=self._drain, name="mlops-collector", daemon=True).start()

    def add(self, deployment: str, body: bytes, output_json: str, request_id: str, *, json_body: bool = False) -> None:
        """Queue one request; the JSON line is built off the request path. ``json_body``: the scorer parsed it."""
        self._queue.put((deployment, (time.time(), body, output_json, request_id, json_body)))

    @staticmethod
    def _line(deployment: str, item: tuple[float, bytes, str, str, bool]) -> str:
        moment, body, output_json, request_id, json_body = item
        try:
            request = body.decode()
            if not json_body:  # embedded as it came when it is JSON; checked unless the scorer parsed it
                json.loads(request)
        except (ValueError, RecursionError):  # a script may take what is not JSON, or nested past the parser
            request = json.dumps(body.decode(errors="replace"))
        stamp = datetime.fromtimestamp(moment, timezone.utc).isoformat()
        return (
            f'{{"time": "{stamp}", "deployment": {json.dumps(deployment)}, "request_id": {json.dumps(request_id)}, '
            f'"input": {request}, "output": {output_json}}}'
        )

    def _drain(self) -> None:
        while True:
            items = [self._queue.get()]
            time.sleep(0.2)  # gather a batch: one write per burst
            while not self._queue.empty():
                items.append(self._queue.get_nowait())
            by_deployment: dict[str, list[str]] = {}
            for index, (deployment, item) in enumerate(items):
                by_deployment.setdefault(deployment, []).append(self._line(deployment, item))
                if index % YIELD_EVERY == YIELD_EVERY - 1:
                    time.sleep(0)  # hand the GIL back to the event loop: a burst must not delay requests
            for deployment, lines in by_deployment.items():
                path = self._path(deployment)
                with open(path, "a", encoding="utf-8") as handle:
                    handle.write("\n".join(lines) + "\n")

    def _path(self, deployment: str) -> Path:
        folder = self.folder / deployment
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{datetime.now(timezone.utc):%Y-%m-%d}.{os.getpid()}.jsonl"  # one writer per file
        if path.exists() and path.stat().st_size > self.max_bytes:
            path.rename(path.with_suffix(f".{int(time.time())}.jsonl"))
        return path


class ScoringApp:
    """Serves ``self.table``; subclasses decide where the table comes from."""

    def __init__(self, collector: Collector | None = None, *, body_timeout_s: float | None = None) -> None:
        self.table = Table()
        self.collector = collector
        self.metrics = Metrics()
        self.deadlines = BodyDeadlines(body_timeout_s or body_timeout_from_env())

    async def read_body(self, request: Any, max_bytes: int) -> bytes | tuple[int, str]:
        """The whole body, read as it arrives, or (status, message) when it is not read whole: 413 as soon as it
        passes ``max_bytes`` (an empty message), 408 when it has not arrived within the body timeout, as from a
        client that announced more than it sends and stalls."""
        task = asyncio.current_task()
        assert task is not None
        receive = request.receive
        chunks: list[bytes] = []
        size = 0
        self.deadlines.arm(task)
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return 400, "The client closed the connection before the whole body arrived."
                chunk = message.get("body", b"")
                if chunk:
                    size += len(chunk)
                    if size > max_bytes:
                        return 413, ""
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        except asyncio.CancelledError:
            if task not in self.deadlines.expired:
                raise
            self.deadlines.expired.discard(task)
            task.uncancel()
            return 408, f"The request body did not arrive within {self.deadlines.timeout_s:g} s ({BODY_TIMEOUT_ENV})."
        finally:
            self.deadlines.reading.pop(task, None)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.concurrency import run_in_threadpool
        from starlette.exceptions import HTTPException
        from starlette.requests import Request
        from starlette.responses import JSONResponse, PlainTextResponse, Response
        from starlette.routing import Route

        from jupyter_mlops.deploy.scoring import json_content_type

        def error(
            status: int, message: str, deployment: str | None = None, headers: dict[str, str] | None = None
        ) -> Response:
            headers = {**(headers or {}), **({DEPLOYMENT_HEADER: deployment} if deployment else {})}
            return JSONResponse({"message": message}, status_code=status, headers=headers or None)

        async def score(request: Request) -> Response:
            """POST /score. The body is refused with 413 past the deployment's ``max_body_bytes``, with 408 when it
            has not arrived whole within the body timeout (``MLOPS_BODY_TIMEOUT_S`` in the environment of the
            router or deployment process when it starts, default 30 s: one setting for every deployment it
            serves, as it guards the connection rather than the model), with 415 when its declared Content-Type is
            not JSON (``application/json`` with any parameters, ``application/*+json``; none declared, or urllib's
            and curl's default ``application/x-www-form-urlencoded``, is read as JSON) unless a scoring script
            reads it, and with 400 when it is not what the model takes."""
            table = self.table
            if table.auth_key is not None:
                given = request.headers.get("authorization", "")
                if not hmac.compare_digest(given.encode(), f"Bearer {table.auth_key}".encode()):
                    return error(401, "Missing or wrong key: send 'Authorization: Bearer KEY'.")
            named = request.headers.get(DEPLOYMENT_HEADER)
            name = named or table.pick()
            if name is None:
                return error(503, "No deployment receives traffic: set the endpoint's traffic.")
            served = table.served.get(name)
            if served is None:
                return error(404, f"No deployment named {name!r}; deployments: {', '.join(table.served) or 'none'}.")
            headers = request.headers
            content_type = headers.get("content-type")
            # a deployment process (upstream) judges for itself: it may run a script
            if served.scorer is not None and served.scorer.json_only and not json_content_type(content_type):
                return error(415, f"Send JSON (Content-Type: application/json), not {content_type}.", name)
            too_large = f"The body is larger than {served.max_body_bytes} bytes (the deployment's max_body_bytes)."
            declared = headers.get("content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > served.max_body_bytes):
                status = 413 if declared.isdigit() else 400
                return error(status, too_large if status == 413 else "Content-Length is not a number.", name, CLOSE)
            body = await self.read_body(request, served.max_body_bytes)
            if isinstance(body, tuple):  # not read whole
                return error(body[0], body[1] or too_large, name, CLOSE)
            request_id = (headers.get(REQUEST_ID_HEADER) or os.urandom(16).hex())[:128]
            started = time.perf_counter()
            try:
                if served.upstream is not None:
                    answer = await asyncio.wait_for(
                        served.upstream.score(body, request_id, content_type), timeout=served.request_timeout_s
                    )
                    if answer.status != 200:
                        self.metrics.observe(name, time.perf_counter() - started, error=True)
                        headers = {DEPLOYMENT_HEADER: name, REQUEST_ID_HEADER: request_id}
                        return Response(answer.body, answer.status, headers, media_type="application/json")
                    text = answer.body.decode()
                else:
                    assert served.scorer is not None
                    if served.scorer.fast:
                        output = served.scorer.score(body)
                    else:
                        output = await asyncio.wait_for(
                            run_in_threadpool(served.scorer.score, body), timeout=served.request_timeout_s
                        )
                    text = json.dumps(output)
            except asyncio.TimeoutError:
                self.metrics.observe(name, time.perf_counter() - started, error=True)
                served.log.warning("request %s took longer than %g s", request_id, served.request_timeout_s)
                return error(504, f"The model took longer than {served.request_timeout_s:g} s (request_timeout).", name)
            except MlopsError as exc:
                self.metrics.observe(name, time.perf_counter() - started, error=True)
                if exc.http_status >= 500:
                    served.log.error("request %s failed: %s", request_id, exc.message)
                return error(exc.http_status, exc.message, name)
            except Exception as exc:  # the model failed: report it, keep serving
                served.log.exception("request %s failed", request_id)
                self.metrics.observe(name, time.perf_counter() - started, error=True)
                return error(500, f"The model failed: {type(exc).__name__}: {exc}", name)
            self.metrics.observe(name, time.perf_counter() - started, error=False)
            if served.collect and self.collector is not None:
                json_body = served.scorer is not None and served.scorer.json_body
                self.collector.add(name, body, text, request_id, json_body=json_body)
            if not named and table.mirror and random.random() * 100 < table.mirror[1]:
                mirrored = table.served[table.mirror[0]]
                threading.Thread(target=self._shadow, args=(mirrored, body), daemon=True).start()
            return Response(
                text, media_type="application/json", headers={DEPLOYMENT_HEADER: name, REQUEST_ID_HEADER: request_id}
            )

        async def health(_: Request) -> Response:
            return JSONResponse({"status": "ok"})

        async def ready(_: Request) -> Response:
            table = self.table
            if table.version == 0:
                return error(503, "Loading the deployments.")
            return JSONResponse({"status": "ready", "deployments": sorted(table.served), "version": table.version})

        async def metrics(_: Request) -> Response:
            return PlainTextResponse(self.metrics.render(), media_type="text/plain; version=0.0.4")

        async def refused(request: Request, exc: Exception) -> Response:
            """Starlette's own refusals (a wrong method: 405, an unknown path: 404) in JSON, as every other answer."""
            assert isinstance(exc, HTTPException)
            if exc.status_code == 405:
                allowed = (exc.headers or {}).get("Allow", "")
                message = f"{request.method} is not allowed on {request.url.path}; allowed: {allowed}."
            elif exc.status_code == 404:
                message = f"No {request.url.path} here: POST /score, GET /health, /ready or /metrics."
            else:
                message = str(exc.detail)
            return JSONResponse({"message": message}, status_code=exc.status_code, headers=exc.headers)

        return Starlette(
            routes=[
                Route("/score", score, methods=["POST"]),
                Route("/health", health, methods=["GET"]),
                Route("/ready", ready, methods=["GET"]),
                Route("/metrics", metrics, methods=["GET"]),
            ],
            exception_handlers={HTTPException: refused},
        )

    def _shadow(self, served: Served, body: bytes) -> None:
        """A mirrored request: scored and measured, its response discarded."""
        started = time.perf_counter()
        try:
            if served.upstream is not None:
                output = served.upstream.score_sync(body)
            else:
                assert served.scorer is not None
                output = served.scorer.score(body)
            self.metrics.observe(served.name, time.perf_counter() - started, error=False)
            if served.collect and self.collector is not None:
                self.collector.add(served.name, body, json.dumps(output), "mirror-" + os.urandom(16).hex())
        except Exception:
            self.metrics.observe(served.name, time.perf_counter() - started, error=True)


def listening_socket(host: str, port: int) -> Any:
    """A socket several worker processes can share (SO_REUSEPORT): the kernel spreads connections over them."""
    import socket

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def run(app: Any, host: str, port: int) -> None:
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[listening_socket(host, port)])
