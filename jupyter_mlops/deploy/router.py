"""The data plane of one endpoint: a Starlette app in its own process, serving its deployments in process.

The router reads what it should serve from the metadata store and polls it for changes. A change is applied by
loading what is new first and then swapping the routing table in one assignment, so a traffic switch or a
replaced deployment never drops a request. Run as ``python -m jupyter_mlops.deploy.router --endpoint NAME ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import logging
import queue
import random
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jupyter_mlops.deploy.scoring import Scorer, load_scorer
from jupyter_mlops.exceptions import MlopsError
from jupyter_mlops.workspace import Workspace

log = logging.getLogger("jupyter_mlops.router")
POLL_S = 0.05
DEPLOYMENT_HEADER = "mlops-model-deployment"
REQUEST_ID_HEADER = "mlops-request-id"  # given by the caller, or made here; labels arriving later refer to it


@dataclass
class Served:
    name: str
    model: str  # name:version
    scorer: Scorer
    collect: bool
    request_timeout_s: float = 60.0
    max_body_bytes: int = 10 * 1024 * 1024


@dataclass
class Table:
    """What the router serves; replaced whole, never mutated."""

    version: int = 0
    served: dict[str, Served] = field(default_factory=dict)
    live: list[tuple[str, int]] = field(default_factory=list)  # (deployment, cumulative percent)
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


class Collector:
    """Appends inputs and outputs as JSON lines, off the request path, one file per deployment and day."""

    def __init__(self, folder: Path, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._queue: queue.SimpleQueue[tuple[str, tuple[float, bytes, str, str]]] = queue.SimpleQueue()
        threading.Thread(target=self._drain, name="mlops-collector", daemon=True).start()

    def add(self, deployment: str, body: bytes, output_json: str, request_id: str) -> None:
        """Queue one request; the JSON line is built off the request path."""
        self._queue.put((deployment, (time.time(), body, output_json, request_id)))

    @staticmethod
    def _line(deployment: str, item: tuple[float, bytes, str, str]) -> str:
        moment, body, output_json, request_id = item
        try:
            request = body.decode()
            json.loads(request)  # embedded as it came when it is JSON (it was parsed to be scored)
        except ValueError:
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
            for deployment, item in items:
                by_deployment.setdefault(deployment, []).append(self._line(deployment, item))
            for deployment, lines in by_deployment.items():
                path = self._path(deployment)
                with open(path, "a", encoding="utf-8") as handle:
                    handle.write("\n".join(lines) + "\n")

    def _path(self, deployment: str) -> Path:
        folder = self.folder / deployment
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{datetime.now(timezone.utc):%Y-%m-%d}.jsonl"
        if path.exists() and path.stat().st_size > self.max_bytes:
            path.rename(path.with_suffix(f".{int(time.time())}.jsonl"))
        return path


class Router:
    def __init__(self, ws: Workspace, endpoint: str) -> None:
        self.ws = ws
        self.endpoint = endpoint
        self.table = Table()
        self.cache = ws.root / "serving" / endpoint
        self.collector = Collector(ws.root / "collected" / endpoint)
        self._scorers: dict[tuple[str, str, str], Scorer] = {}
        self._metrics = _Metrics()

    # -- control: follow the store ------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Apply the stored configuration if it changed: load new models first, then swap the table."""
        from sqlalchemy import select

        from jupyter_mlops.deploy.endpoints import ACTIVE
        from jupyter_mlops.store.endpoints import EndpointRecord
        from jupyter_mlops.store.schema import Deployment

        with self.ws.store.session() as session:
            record = session.scalar(select(EndpointRecord).where(EndpointRecord.name == self.endpoint))
            if record is None or record.config_version == self.table.version:
                return
            version, traffic, mirror = record.config_version, json.loads(record.traffic), json.loads(record.mirror)
            auth_key = record.key if record.auth == "key" else None
            rows = session.scalars(
                select(Deployment).where(Deployment.endpoint == self.endpoint, Deployment.status.in_(ACTIVE))
            ).all()
        served, outcomes = {}, {}
        for row in rows:
            options = json.loads(row.options or "{}")
            model = f"{row.model_name}:{row.model_version}"
            try:
                scorer = self._scorer(row.model_name, row.model_version, row.model_uri, row.scoring_script, options)
                served[row.name] = Served(
                    row.name,
                    model,
                    scorer,
                    options.get("collect", True),
                    float(options.get("request_timeout_s", 60.0)),
                    int(options.get("max_body_bytes", 10 * 1024 * 1024)),
                )
                outcomes[row.name] = ("active", None)
            except Exception as exc:  # a deployment that fails to load must not take the others down
                log.exception("deployment %s failed to load", row.name)
                outcomes[row.name] = ("failed", f"{type(exc).__name__}: {exc}")
        live, total = [], 0
        for name, percent in traffic.items():
            if percent > 0 and name in served:
                total += percent
                live.append((name, total))
        live = [(name, upto * 100 / total) for name, upto in live] if total else []
        mirror_pair = next(((n, p) for n, p in mirror.items() if p > 0 and n in served), None)
        self.table = Table(version, served, live, mirror_pair, auth_key)  # the swap: one assignment
        self._report(version, outcomes)

    def _scorer(
        self, model: str, version: int, source: str | None, script: str | None, options: dict[str, Any]
    ) -> Scorer:
        key = (model, str(version), script or "")
        if key not in self._scorers:
            folder = self.cache / f"{model}-{version}"
            if not folder.exists():
                staging = folder.with_suffix(".tmp")
                shutil.rmtree(staging, ignore_errors=True)
                local = _local_path(source)
                if local is not None and local.is_dir():  # a local store: copy, no MLflow import (start-up time)
                    shutil.copytree(local, staging)
                else:
                    self.ws.models.download(model, version, staging)
                staging.rename(folder)
            self._scorers[key] = load_scorer(
                folder, Path(script) if script else None, prefer_onnx=options.get("prefer_onnx", True)
            )
        return self._scorers[key]

    def _report(self, version: int, outcomes: dict[str, tuple[str, str | None]]) -> None:
        from sqlalchemy import update

        from jupyter_mlops.store.endpoints import EndpointRecord
        from jupyter_mlops.store.schema import Deployment

        with self.ws.store.session() as session:
            for name, (status, error) in outcomes.items():
                session.execute(
                    update(Deployment)
                    .where(Deployment.endpoint == self.endpoint, Deployment.name == name)
                    .values(status=status, error=error)
                )
            session.execute(
                update(EndpointRecord).where(EndpointRecord.name == self.endpoint).values(applied_version=version)
            )

    def follow(self) -> None:
        while True:
            try:
                self.refresh()
            except Exception:
                log.exception("could not read the endpoint configuration; retrying")
            time.sleep(POLL_S)

    # -- data plane ---------------------------------------------------------------------------------------------
    def app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.concurrency import run_in_threadpool
        from starlette.requests import Request
        from starlette.responses import JSONResponse, PlainTextResponse, Response
        from starlette.routing import Route

        def error(status: int, message: str, deployment: str | None = None) -> Response:
            headers = {DEPLOYMENT_HEADER: deployment} if deployment else None
            return JSONResponse({"message": message}, status_code=status, headers=headers)

        async def score(request: Request) -> Response:
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
            too_large = f"The body is larger than {served.max_body_bytes} bytes (the deployment's max_body_bytes)."
            if int(request.headers.get("content-length") or 0) > served.max_body_bytes:
                return error(413, too_large, name)
            body = await request.body()
            if len(body) > served.max_body_bytes:
                return error(413, too_large, name)
            started = time.perf_counter()
            try:
                if served.scorer.fast:
                    output = served.scorer.score(body)
                else:
                    output = await asyncio.wait_for(
                        run_in_threadpool(served.scorer.score, body), timeout=served.request_timeout_s
                    )
            except asyncio.TimeoutError:
                self._metrics.observe(name, time.perf_counter() - started, error=True)
                return error(504, f"The model took longer than {served.request_timeout_s:g} s (request_timeout).", name)
            except MlopsError as exc:
                self._metrics.observe(name, time.perf_counter() - started, error=True)
                return error(exc.http_status, exc.message, name)
            except Exception as exc:  # the model failed: report it, keep serving
                log.exception("deployment %s failed a request", name)
                self._metrics.observe(name, time.perf_counter() - started, error=True)
                return error(500, f"The model failed: {type(exc).__name__}: {exc}", name)
            self._metrics.observe(name, time.perf_counter() - started, error=False)
            text = json.dumps(output)
            request_id = (request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex)[:128]
            if served.collect:
                self.collector.add(name, body, text, request_id)
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
            return PlainTextResponse(self._metrics.render(), media_type="text/plain; version=0.0.4")

        return Starlette(
            routes=[
                Route("/score", score, methods=["POST"]),
                Route("/health", health, methods=["GET"]),
                Route("/ready", ready, methods=["GET"]),
                Route("/metrics", metrics, methods=["GET"]),
            ]
        )

    def _shadow(self, served: Served, body: bytes) -> None:
        """A mirrored request: scored and measured, its response discarded."""
        started = time.perf_counter()
        try:
            output = served.scorer.score(body)
            self._metrics.observe(served.name, time.perf_counter() - started, error=False)
            if served.collect:
                self.collector.add(served.name, body, json.dumps(output), "mirror-" + uuid.uuid4().hex)
        except Exception:
            self._metrics.observe(served.name, time.perf_counter() - started, error=True)


def _local_path(uri: str | None) -> Path | None:
    if uri and uri.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(uri).path))
    return None


class _Metrics:
    """Requests, errors and a latency histogram per deployment (Prometheus text format)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("mlops_requests", "Scored requests", ["deployment"], registry=self.registry)
        self.errors = Counter("mlops_errors", "Failed requests", ["deployment"], registry=self.registry)
        self.latency = Histogram(
            "mlops_request_latency_seconds",
            "Scoring latency",
            ["deployment"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        self._children: dict[str, tuple[Any, Any, Any]] = {}

    def observe(self, deployment: str, seconds: float, *, error: bool) -> None:
        children = self._children.get(deployment)
        if children is None:  # label lookups cost more than the increments: do them once per deployment
            children = self._children[deployment] = (
                self.requests.labels(deployment),
                self.latency.labels(deployment),
                self.errors.labels(deployment),
            )
        requests, latency, errors = children
        requests.inc()
        latency.observe(seconds)
        if error:
            errors.inc()

    def render(self) -> str:
        from prometheus_client import generate_latest

        return generate_latest(self.registry).decode()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="jupyter_mlops.deploy.router")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--tracking-uri")
    parser.add_argument("--metadata-uri")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ws = Workspace(args.workspace, tracking_uri=args.tracking_uri, metadata_uri=args.metadata_uri)
    router = Router(ws, args.endpoint)
    router.refresh()
    threading.Thread(target=router.follow, name="mlops-router-config", daemon=True).start()
    import uvicorn

    uvicorn.run(router.app(), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
