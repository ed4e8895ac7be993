"""The data plane: a Starlette app scoring requests with whatever routing table it is given.

The endpoint's router (which follows the metadata store, see ``router.py``) and a standalone deployment process
(the container entrypoint, see ``serve.py``) serve the same app, so a deployment answers the same way wherever it
runs. The table is replaced whole, never mutated: a traffic switch or a replaced deployment is one assignment and
never drops a request.

Besides ``POST /score`` it speaks MLflow's scoring protocol (``POST /invocations``, ``GET /ping``) and the Open
Inference Protocol v2 (``/v2/...``): each translates at the edges of the one pipeline (``ScoringApp.handle``), see
``protocols/``. What a client sends never makes a 5xx: every refusal is a 4xx in the protocol's error shape
(``{"message": ...}`` on ``/score``; a wrong method too: 405), and a body that never finishes is answered 408 after
``MLOPS_BODY_TIMEOUT_S``.
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
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops.deploy.metrics import Metrics
from jupyter_mlops.deploy.shadow import Shadow
from jupyter_mlops.exceptions import MlopsError

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from jupyter_mlops.deploy.forward import Upstream
    from jupyter_mlops.deploy.protocols.wire import Wire
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


# time, body, output, request id, JSON, protocol (None: the body is /score's)
Collected = tuple[float, bytes | Callable[[], bytes], str, str, bool, str | None]


class Collector:
    """Appends inputs and outputs as JSON lines, off the request path, one file per deployment and day."""

    def __init__(self, folder: Path, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._queue: queue.SimpleQueue[tuple[str, Collected]] = queue.SimpleQueue()
        threading.Thread(target=self._drain, name="mlops-collector", daemon=True).start()

    def add(
        self,
        deployment: str,
        body: bytes | Callable[[], bytes],
        output_json: str,
        request_id: str,
        *,
        json_body: bool = False,
        protocol: str | None = None,
    ) -> None:
        """Queue one request; the JSON line is built off the request path. ``body`` may be how to write it (a
        protocol's parsed payload), called then. ``json_body``: the scorer parsed it, or it was written as JSON.
        ``protocol``: the body is that protocol's request as it came (``v2``), kept so and translated when read."""
        self._queue.put((deployment, (time.time(), body, output_json, request_id, json_body, protocol)))

    @staticmethod
    def _line(deployment: str, item: Collected) -> str:
        moment, given, output_json, request_id, json_body, protocol = item
        try:
            body = given if isinstance(given, bytes) else given()
        except Exception:  # a payload that cannot be written: collect the answer all the same
            log.exception("request %s: its input could not be written for collection", request_id)
            body, json_body = b"null", True
        try:
            request = body.decode()
            if not json_body:  # embedded as it came when it is JSON; checked unless the scorer parsed it
                json.loads(request)
        except (ValueError, RecursionError):  # a script may take what is not JSON, or nested past the parser
            request = json.dumps(body.decode(errors="replace"))
        stamp = datetime.fromtimestamp(moment, timezone.utc).isoformat()
        kind = f'"protocol": {json.dumps(protocol)}, ' if protocol else ""
        return (
            f'{{"time": "{stamp}", "deployment": {json.dumps(deployment)}, "request_id": {json.dumps(request_id)}, '
            f'{kind}"input": {request}, "output": {output_json}}}'
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

    endpoint = ""  # the name the protocols know it by (v2's model name); a router's is its endpoint's

    def __init__(self, collector: Collector | None = None, *, body_timeout_s: float | None = None) -> None:
        self.table = Table()
        self.collector = collector
        self.metrics = Metrics()
        self.shadow = Shadow(self.metrics)  # mirrored requests, compared with live off the request path
        if collector is not None:
            self.shadow.collect = lambda name, body, text: collector.add(
                name, body, text, "mirror-" + os.urandom(16).hex()
            )
        self.deadlines = BodyDeadlines(body_timeout_s or body_timeout_from_env())
        # what each loaded model takes and returns (v2 metadata), kept as long as its scorer or upstream lives
        self.descriptions: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

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

    async def handle(self, request: Request, wire: Wire, named: str | None = None) -> Response:
        """The one pipeline every scoring route runs, whatever its protocol: the key, the deployment (``named`` by
        the route, else the ``mlops-model-deployment`` header, else the traffic split), the body's type and size,
        the protocol's translation to ``/score``'s body, scoring (in process or forwarded), metrics, collection,
        mirroring, and the protocol's answer. Refusals are the protocol's (``wire.refuse``).

        The body is refused with 413 past the deployment's ``max_body_bytes``, with 408 when it has not arrived
        whole within the body timeout (``MLOPS_BODY_TIMEOUT_S`` in the environment of the router or deployment
        process when it starts, default 30 s: one setting for every deployment it serves, as it guards the
        connection rather than the model), with 415 when the protocol does not read its declared Content-Type, and
        with 400 when it is not what the protocol or the model takes."""
        table = self.table
        if table.auth_key is not None:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {table.auth_key}".encode()):
                return wire.refuse(401, "Missing or wrong key: send 'Authorization: Bearer KEY'.")
        headers = request.headers
        named = named or headers.get(DEPLOYMENT_HEADER)
        name = named or table.pick()
        if name is None:
            return wire.refuse(503, "No deployment receives traffic: set the endpoint's traffic.")
        served = table.served.get(name)
        if served is None:
            return wire.refuse(404, f"No deployment named {name!r}; deployments: {', '.join(table.served) or 'none'}.")
        named_header = {DEPLOYMENT_HEADER: name}
        content_type = headers.get("content-type")
        unsupported = wire.unsupported(content_type, served)
        if unsupported is not None:
            return wire.refuse(415, unsupported, named_header)
        too_large = f"The body is larger than {served.max_body_bytes} bytes (the deployment's max_body_bytes)."
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > served.max_body_bytes):
            status = 413 if declared.isdigit() else 400
            message = too_large if status == 413 else "Content-Length is not a number."
            return wire.refuse(status, message, {**named_header, **CLOSE})
        body = await self.read_body(request, served.max_body_bytes)
        if isinstance(body, tuple):  # not read whole
            return wire.refuse(body[0], body[1] or too_large, {**named_header, **CLOSE})
        started = time.perf_counter()
        try:
            translated = await wire.translate(body, request, served)
        except MlopsError as exc:
            self.metrics.observe(name, time.perf_counter() - started, error=True)
            return wire.refuse(exc.http_status, exc.message, named_header)
        request_id = (headers.get(REQUEST_ID_HEADER) or translated.request_id or os.urandom(16).hex())[:128]
        answered = {DEPLOYMENT_HEADER: name, REQUEST_ID_HEADER: request_id}
        output: Any = None
        try:
            if served.upstream is not None:
                answer = await asyncio.wait_for(
                    served.upstream.score(translated.body, request_id, translated.content_type),
                    timeout=served.request_timeout_s,
                )
                if answer.status != 200:
                    self.metrics.observe(name, time.perf_counter() - started, error=True)
                    return wire.relay(answer.status, answer.body, answered)
                text = answer.body.decode()
            else:
                scorer = served.scorer
                assert scorer is not None
                parsed = translated.payload is not None and scorer.takes_payload
                if scorer.fast:
                    if parsed:
                        output = scorer.score_payload(translated.payload, translated.booleans)
                    else:
                        output = scorer.score(translated.body)
                else:
                    from starlette.concurrency import run_in_threadpool

                    call = (
                        run_in_threadpool(scorer.score_payload, translated.payload, translated.booleans)
                        if parsed
                        else run_in_threadpool(scorer.score, translated.body)
                    )
                    output = await asyncio.wait_for(call, timeout=served.request_timeout_s)
                text = json.dumps(output)
        except asyncio.TimeoutError:
            self.metrics.observe(name, time.perf_counter() - started, error=True)
            served.log.warning("request %s took longer than %g s", request_id, served.request_timeout_s)
            message = f"The model took longer than {served.request_timeout_s:g} s (request_timeout)."
            return wire.refuse(504, message, named_header)
        except MlopsError as exc:
            self.metrics.observe(name, time.perf_counter() - started, error=True)
            if exc.http_status >= 500:
                served.log.error("request %s failed: %s", request_id, exc.message)
            return wire.refuse(exc.http_status, exc.message, named_header)
        except Exception as exc:  # the model failed: report it, keep serving
            served.log.exception("request %s failed", request_id)
            self.metrics.observe(name, time.perf_counter() - started, error=True)
            return wire.refuse(500, f"The model failed: {type(exc).__name__}: {exc}", named_header)
        self.metrics.observe(name, time.perf_counter() - started, error=False)
        if served.collect and self.collector is not None:
            if translated.collect_as is not None:  # the protocol's JSON request as it came: nothing to write
                self.collector.add(name, body, text, request_id, json_body=True, protocol=translated.collect_as)
            else:
                # a body a protocol translated is JSON made here (a parsed payload is written off the request path,
                # when the line is); else as the scorer proved it
                made_here = translated.payload is not None or translated.body is not body
                json_body = made_here or (served.scorer is not None and served.scorer.json_body)
                given = (lambda: translated.body) if translated.payload is not None else translated.body
                self.collector.add(name, given, text, request_id, json_body=json_body)
        if not named and table.mirror and random.random() * 100 < table.mirror[1]:
            self.shadow.submit(table.served[table.mirror[0]], translated, output if output is not None else text)
        try:
            return wire.answer(output, text, served, translated, answered)
        except MlopsError as exc:  # the answer cannot take the shape the request asked for
            return wire.refuse(exc.http_status, exc.message, answered)
        except (TypeError, ValueError) as exc:  # what the model answered does not make the protocol's answer
            served.log.error("request %s: the answer does not fit the protocol: %s", request_id, exc)
            return wire.refuse(500, f"The model's answer does not fit the protocol: {exc}"[:500], answered)

    def app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.exceptions import HTTPException
        from starlette.responses import JSONResponse, PlainTextResponse
        from starlette.routing import Route

        from jupyter_mlops.deploy.protocols import invocations, v2
        from jupyter_mlops.deploy.protocols.wire import Wire

        wire = Wire()

        async def score(request: Request) -> Response:
            """POST /score: MLflow's JSON bodies (see ``handle``); 415 for a declared Content-Type that is not JSON
            (``application/json`` with any parameters, ``application/*+json``; none declared, or urllib's and
            curl's default ``application/x-www-form-urlencoded``, is read as JSON) unless a scoring script reads
            it."""
            return await self.handle(request, wire)

        async def health(_: Request) -> Response:
            return JSONResponse({"status": "ok"})

        async def ready(_: Request) -> Response:
            table = self.table
            if table.version == 0:
                return wire.refuse(503, "Loading the deployments.")
            return JSONResponse({"status": "ready", "deployments": sorted(table.served), "version": table.version})

        async def metrics(_: Request) -> Response:
            return PlainTextResponse(self.metrics.render(), media_type="text/plain; version=0.0.4")

        async def refused(request: Request, exc: Exception) -> Response:
            """Starlette's own refusals (a wrong method: 405, an unknown path: 404) in the shape of the protocol
            the path belongs to, as every other answer."""
            assert isinstance(exc, HTTPException)
            path = request.url.path
            if exc.status_code == 405:
                allowed = (exc.headers or {}).get("Allow", "")
                message = f"{request.method} is not allowed on {path}; allowed: {allowed}."
            elif exc.status_code == 404:
                message = (
                    f"No {path} here: POST /score, POST /invocations, POST /v2/models/NAME/infer, GET /health, "
                    "/ready, /ping, /metrics, /v2, /v2/health/live, /v2/health/ready, /v2/models/NAME[/ready]."
                )
            else:
                message = str(exc.detail)
            protocol = v2.WIRE if path.startswith("/v2") else invocations.WIRE if path == "/invocations" else wire
            return protocol.refuse(exc.status_code, message, exc.headers)

        mlflow_routes, v2_routes = invocations.routes(self), v2.routes(self)  # each protocol's scoring route first
        return Starlette(
            routes=[  # the scoring routes first: each request is matched against the routes in turn
                Route("/score", score, methods=["POST"]),
                mlflow_routes[0],
                v2_routes[0],
                *mlflow_routes[1:],
                *v2_routes[1:],
                Route("/health", health, methods=["GET"]),
                Route("/ready", ready, methods=["GET"]),
                Route("/metrics", metrics, methods=["GET"]),
            ],
            exception_handlers={HTTPException: refused},
        )


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
