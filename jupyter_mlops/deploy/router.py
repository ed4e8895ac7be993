"""The router of one endpoint: a worker process that follows the metadata store and serves the data plane.

An endpoint runs one or more of these workers on the same port (SO_REUSEPORT). Each reads what it should serve
from the store and polls it for changes; a change is applied by loading what is new first and then swapping the
routing table in one assignment, so a traffic switch or a replaced deployment never drops a request. Deployments
that share the endpoint's environment are scored inside every worker; one with its own environment or a container
runs as its own process and the worker forwards to it. Each worker records the configuration it has applied, so
the control plane knows when a change is live everywhere.
Run as ``python -m jupyter_mlops.deploy.router --endpoint NAME --slot N ...``.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops.deploy.app import Collector, ScoringApp, Served, Table, live_shares, log, run

if TYPE_CHECKING:
    from jupyter_mlops.deploy.forward import Upstream
    from jupyter_mlops.deploy.scoring import Scorer
    from jupyter_mlops.workspace import Workspace

POLL_S = 0.02
FALLBACK_POLL_S = 2.0


class Router(ScoringApp):
    def __init__(self, ws: Workspace, endpoint: str, slot: int = 0) -> None:
        super().__init__(Collector(ws.root / "collected" / endpoint))
        self.ws = ws
        self.endpoint = endpoint
        self.slot = slot
        self.cache = ws.root / "serving" / endpoint
        self._scorers: dict[tuple[str, str, str, bool], Scorer] = {}
        self._upstreams: dict[tuple[str, str | None], Upstream] = {}
        self._logs: dict[str, logging.Logger] = {}
        self._models: dict[str, str] = {}  # deployment -> model it serves, to log what changed

    # -- control: follow the store ------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Apply the stored configuration if it changed: load new models first, then swap the table."""
        from sqlalchemy import select

        from jupyter_mlops.deploy.endpoints import ACTIVE
        from jupyter_mlops.store.endpoints import EndpointRecord
        from jupyter_mlops.store.schema import Deployment

        with self.ws.store.session() as session:
            if not self._owns_slot(session):
                log.warning(
                    "worker %d of %s has no record of this process any more: stopping", self.slot, self.endpoint
                )
                os.kill(os.getpid(), signal.SIGTERM)  # uvicorn finishes the requests in flight, then exits
                return
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
            timeout = float(options.get("request_timeout_s", 60.0))
            deployment_log = self._log(row.name)
            try:
                upstream, scorer = None, None
                if options.get("upstream"):
                    upstream = self._upstream(options["upstream"]["url"], options["upstream"].get("key"), timeout)
                else:
                    scorer = self._scorer(row.model_name, row.model_version, row.model_uri, row.scoring_script, options)
                served[row.name] = Served(
                    row.name,
                    f"{row.model_name}:{row.model_version}",
                    scorer,
                    options.get("collect", True),
                    timeout,
                    int(options.get("max_body_bytes", 10 * 1024 * 1024)),
                    upstream,
                    deployment_log,
                )
                outcomes[row.name] = ("active", None)
            except Exception as exc:  # a deployment that fails to load must not take the others down
                deployment_log.exception("failed to load %s:%s", row.model_name, row.model_version)
                outcomes[row.name] = ("failed", f"{type(exc).__name__}: {exc}")
        mirror_pair = next(((n, p) for n, p in mirror.items() if p > 0 and n in served), None)
        self.table = Table(version, served, live_shares(traffic, served), mirror_pair, auth_key)  # the swap
        for name, deployment in served.items():
            if self._models.get(name) != deployment.model:
                deployment.log.info("serving %s (configuration %d)", deployment.model, version)
        self._models = {name: deployment.model for name, deployment in served.items()}
        gc.freeze()  # what is loaded lives as long as the worker: keep it out of the collector's scans (tail latency)
        self._report(version, outcomes)

    def _owns_slot(self, session: Any) -> bool:
        """Whether the store records this process as its slot's worker; claims a slot recorded without a process
        (the control plane died between starting it and writing its pid), so no worker ever runs unrecorded."""
        from sqlalchemy import select, update

        from jupyter_mlops.store.endpoints import EndpointWorker

        where = (EndpointWorker.endpoint == self.endpoint, EndpointWorker.slot == self.slot)
        row = session.execute(select(EndpointWorker.pid).where(*where)).first()
        if row is not None and row.pid is None:  # read first: an UPDATE would lock SQLite on every poll
            claim = update(EndpointWorker).where(*where, EndpointWorker.pid.is_(None)).values(pid=os.getpid())
            session.execute(claim)
            row = session.execute(select(EndpointWorker.pid).where(*where)).first()
        return row is not None and row.pid == os.getpid()

    def _scorer(
        self, model: str, version: int, source: str | None, script: str | None, options: dict[str, Any]
    ) -> Scorer:
        from jupyter_mlops.deploy.scoring import load_scorer

        prefer_onnx = options.get("prefer_onnx", True)
        key = (model, str(version), script or "", prefer_onnx)
        if key not in self._scorers:
            folder = self.cache / f"{model}-{version}"
            if not folder.exists():
                staging = folder.with_suffix(f".{os.getpid()}.tmp")
                shutil.rmtree(staging, ignore_errors=True)
                local = _local_path(source)
                if local is not None and local.is_dir():  # a local store: copy, no MLflow import (start-up time)
                    shutil.copytree(local, staging)
                else:
                    self.ws.models.download(model, version, staging)
                try:
                    staging.rename(folder)
                except OSError:  # another worker got there first
                    shutil.rmtree(staging, ignore_errors=True)
            self._scorers[key] = load_scorer(folder, Path(script) if script else None, prefer_onnx=prefer_onnx)
        return self._scorers[key]

    def _upstream(self, url: str, key: str | None, timeout_s: float) -> Upstream:
        from jupyter_mlops.deploy.forward import Upstream

        if (url, key) not in self._upstreams:
            self._upstreams[(url, key)] = Upstream(url, key, timeout_s)
        return self._upstreams[(url, key)]

    def _log(self, deployment: str) -> logging.Logger:
        """The deployment's own log file (what ``ep.logs(deployment)`` reads); lines also go to the router log."""
        if deployment not in self._logs:
            logger = logging.getLogger(f"jupyter_mlops.deployment.{self.endpoint}.{deployment}")
            path = deployment_log_path(self.ws, self.endpoint, deployment)
            path.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(path, encoding="utf-8")
            handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s worker {self.slot}: %(message)s"))
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            self._logs[deployment] = logger
        return self._logs[deployment]

    def _report(self, version: int, outcomes: dict[str, tuple[str, str | None]]) -> None:
        from sqlalchemy import update

        from jupyter_mlops.store.endpoints import EndpointWorker
        from jupyter_mlops.store.schema import Deployment

        with self.ws.store.session() as session:
            for name, (status, error) in outcomes.items():
                session.execute(
                    update(Deployment)
                    .where(Deployment.endpoint == self.endpoint, Deployment.name == name)
                    .values(status=status, error=error)
                )
            session.execute(
                update(EndpointWorker)
                .where(EndpointWorker.endpoint == self.endpoint, EndpointWorker.slot == self.slot)
                .values(applied_version=version)
            )

    def follow(self) -> None:
        """Re-read the configuration when the control plane signals a change (a file replaced on every change:
        a stat costs microseconds where a store query holds the GIL for milliseconds), and every few seconds."""
        signal_file = config_signal_path(self.ws, self.endpoint)
        seen: tuple[int, int] | None = None
        last_read = time.monotonic()
        while True:
            try:
                stat = signal_file.stat()
                stamp: tuple[int, int] | None = (stat.st_ino, stat.st_mtime_ns)
            except FileNotFoundError:
                stamp = None
            if stamp != seen or time.monotonic() - last_read > FALLBACK_POLL_S:
                seen, last_read = stamp, time.monotonic()
                try:
                    self.refresh()
                except Exception:
                    log.exception("could not read the endpoint configuration; retrying")
                    seen = None
            time.sleep(POLL_S)


def config_signal_path(ws: Workspace, endpoint: str) -> Path:
    return ws.root / "serving" / endpoint / "config-changed"


def deployment_log_path(ws: Workspace, endpoint: str, deployment: str) -> Path:
    return ws.root / "logs" / "endpoints" / endpoint / f"{deployment}.log"


def _local_path(uri: str | None) -> Path | None:
    if uri and uri.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(uri).path))
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="jupyter_mlops.deploy.router")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--tracking-uri")
    parser.add_argument("--metadata-uri")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--slot", type=int, default=0, help="which of the endpoint's workers this is")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from jupyter_mlops.workspace import Workspace

    ws = Workspace(args.workspace, tracking_uri=args.tracking_uri, metadata_uri=args.metadata_uri)
    router = Router(ws, args.endpoint, args.slot)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # until uvicorn installs its own graceful handler
    router.refresh()
    threading.Thread(target=router.follow, name="mlops-router-config", daemon=True).start()
    run(router.app(), args.host, args.port)


if __name__ == "__main__":
    main()
