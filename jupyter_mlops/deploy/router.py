"""The router of one endpoint: a worker process that follows the metadata store and serves the data plane.

An endpoint runs one or more of these workers on the same port (SO_REUSEPORT). Each reads what it should serve
from the store and polls it for changes; a change is applied by loading what is new first and then swapping the
routing table in one assignment, so a traffic switch or a replaced deployment never drops a request. Deployments
that share the endpoint's environment are scored inside every worker; one with its own environment or a container
runs as its own process and the worker forwards to it. Each worker records the configuration it has applied, so
the control plane knows when a change is live everywhere, and checks every second that the endpoint's supervisor
process runs, starting a new one when it does not (``restarts.revive_supervisor``: one worker wins the claim).
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
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops.deploy.app import Collector, ScoringApp, Served, Table, listening_socket, live_shares, log
from jupyter_mlops.processes import ProcessIdentity

if TYPE_CHECKING:
    from jupyter_mlops.deploy.forward import Upstream
    from jupyter_mlops.deploy.scoring import Scorer
    from jupyter_mlops.workspace import Workspace

POLL_S = 0.02
FALLBACK_POLL_S = 2.0
SUPERVISOR_CHECK_S = 1.0


class Router(ScoringApp):
    def __init__(self, ws: Workspace, endpoint: str, slot: int = 0) -> None:
        super().__init__(Collector(ws.layout.collected(endpoint)))
        self.ws = ws
        self.endpoint = endpoint
        self.slot = slot
        self.identity = ProcessIdentity.current()  # what the store records for this worker: pid and start time
        self._scorers: dict[tuple[str, str, str, bool, str], Scorer] = {}
        self._upstreams: dict[tuple[str, str | None], Upstream] = {}
        self._logs: dict[str, logging.Logger] = {}
        self._models: dict[str, str] = {}  # deployment -> model it serves, to log what changed
        self._supervisor: subprocess.Popen[bytes] | None = None  # the supervisor this worker started, if any

    # -- control: follow the store ------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Apply the stored configuration if it changed: load new models first, then swap the table.

        A worker the store no longer records as its slot's (its pid and start time) stops: no worker runs
        unrecorded. One recorded without a process claims the slot (its starter died before writing the pid)."""
        from jupyter_mlops.store.endpoints import worker_assignment

        owned, record, rows = worker_assignment(
            self.ws.store,
            self.endpoint,
            self.slot,
            pid=self.identity.pid,
            pid_start=self.identity.started or None,
            applied=self.table.version,
        )
        if not owned:
            log.warning("worker %d of %s has no record of this process any more: stopping", self.slot, self.endpoint)
            os.kill(os.getpid(), signal.SIGTERM)  # uvicorn finishes the requests in flight, then exits
            return
        if record is None:
            return
        version, traffic, mirror = record.config_version, json.loads(record.traffic), json.loads(record.mirror)
        auth_key = record.key if record.auth == "key" else None
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
                applied = f", {deployment.scorer.applied}" if deployment.scorer and deployment.scorer.applied else ""
                deployment.log.info("serving %s (configuration %d)%s", deployment.model, version, applied)
        self._models = {name: deployment.model for name, deployment in served.items()}
        gc.freeze()  # what is loaded lives as long as the worker: keep it out of the collector's scans (tail latency)
        self._report(version, outcomes)

    def _scorer(
        self, model: str, version: int, source: str | None, script: str | None, options: dict[str, Any]
    ) -> Scorer:
        from jupyter_mlops.deploy.scoring import load_scorer

        prefer_onnx = options.get("prefer_onnx", True)
        resources = options.get("resources") or {}  # deploy/resources.py's serving dict: threads, provider, memory
        key = (model, str(version), script or "", prefer_onnx, json.dumps(resources, sort_keys=True))
        if key not in self._scorers:
            folder = self.ws.layout.served_model(self.endpoint, f"{model}-{version}")
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
            self._scorers[key] = load_scorer(
                folder, Path(script) if script else None, prefer_onnx=prefer_onnx, resources=resources
            )
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
            path = self.ws.layout.deployment_log(self.endpoint, deployment)
            path.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(path, encoding="utf-8")
            handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s worker {self.slot}: %(message)s"))
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            self._logs[deployment] = logger
        return self._logs[deployment]

    def _report(self, version: int, outcomes: dict[str, tuple[str, str | None]]) -> None:
        from jupyter_mlops.store.endpoints import report_applied

        report_applied(self.ws.store, self.endpoint, self.slot, version, outcomes)

    def watch_supervisor(self) -> None:
        """Start the endpoint's supervisor when the one recorded is dead (and no other worker claimed it first).
        A worker whose workspace folder was removed stops: nothing can record it any more."""
        from jupyter_mlops.deploy.restarts import exit_reason, revive_supervisor

        if not self.ws.root.exists():
            log.warning("worker %d of %s: its workspace %s is gone: stopping", self.slot, self.endpoint, self.ws.root)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        reason = None
        if self._supervisor is not None and self._supervisor.poll() is not None:
            reason = exit_reason(self._supervisor.returncode)  # it was this worker's child: how it exited is known
        started = revive_supervisor(self.ws, self.endpoint, by=f"worker {self.slot}", reason=reason)
        if started is not None:
            log.warning("worker %d of %s started a supervisor (pid %d)", self.slot, self.endpoint, started.pid)
            self._supervisor = started

    def follow(self) -> None:
        """Re-read the configuration when the control plane signals a change (a file replaced on every change:
        a stat costs microseconds where a store query holds the GIL for milliseconds), and every few seconds;
        check the supervisor every second."""
        signal_file = self.ws.layout.config_signal(self.endpoint)
        seen: tuple[int, int] | None = None
        last_read = last_check = time.monotonic()
        while True:
            if time.monotonic() - last_check > SUPERVISOR_CHECK_S:
                last_check = time.monotonic()
                try:
                    self.watch_supervisor()
                except Exception:
                    log.exception("could not check the endpoint's supervisor; retrying")
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
    # bound first: a port taken by another program fails the start before anything is loaded or reported applied
    # (no connection reaches the socket before uvicorn listens on it)
    sock = listening_socket(args.host, args.port)
    router.refresh()
    threading.Thread(target=router.follow, name="mlops-router-config", daemon=True).start()
    serve(router.app(), sock)


def serve(app: Any, sock: Any) -> None:
    """``app.run`` on a socket already bound."""
    import uvicorn

    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])


if __name__ == "__main__":
    main()
