"""Process supervision of online endpoints: the processes behind the records, started, checked and stopped.

The store says what should run; the supervisor makes it so. Every process is recorded before it starts, so none
ever runs unrecorded: a router worker by its slot's row (``mlops_endpoint_workers``, which a worker started by a
control plane that died before writing its pid claims for itself), a deployment process by a launch row
(``mlops_deployment_launches``) until the deployment's options record it. A recorded process is ours only while its
pid *and* its start time match (``ProcessIdentity``): a pid the system gave to another process after a crash is
never waited on, taken as running or stopped. Rows written before start times were recorded go by the pid alone.

Changes reach the workers as a new configuration version in the store plus a signal file; ``apply`` returns once
every worker has applied it. ``reconcile`` restarts dead workers and dead deployment processes and stops launches
whose starter died.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops.deploy import client, isolated
from jupyter_mlops.deploy.metrics import MULTIPROCESS_ENV
from jupyter_mlops.exceptions import EndpointError, MlopsError
from jupyter_mlops.processes import ProcessIdentity, free_port, process_start, stop_process_group
from jupyter_mlops.store import endpoints as q

if TYPE_CHECKING:
    from jupyter_mlops.store.endpoints import EndpointRecord, EndpointWorker
    from jupyter_mlops.workspace import Workspace

START_TIMEOUT_S = 60.0
APPLY_TIMEOUT_S = 120.0
UNRECORDED_AFTER_S = isolated.READY_TIMEOUT_S + 60  # a launch record older than a start can take: its starter died


def launch_of(options: str | None) -> isolated.Launch | None:
    """How a deployment's own process was started (from its stored options), when it has one."""
    process = json.loads(options or "{}").get("process")
    return isolated.Launch(**process) if process else None


def worker_running(worker: EndpointWorker) -> bool:
    """Whether the recorded worker process still runs (the same process: pid and start time)."""
    return worker.pid is not None and ProcessIdentity(worker.pid, worker.pid_start or "").alive()


def tail(path: Path, lines: int) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class Supervisor:
    """The processes of one workspace's endpoints."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    # -- router workers ---------------------------------------------------------------------------------------------
    def scale(self, name: str, instances: int) -> None:
        """Run at least ``instances`` workers: start the missing slots and wait until they serve."""
        q.update_endpoint(self.ws.store, name, instances=instances)
        workers = {w.slot: w for w in q.workers(self.ws.store, name)}
        missing = [slot for slot in range(instances) if slot not in workers or not worker_running(workers[slot])]
        self.start_workers(name, missing)
        q.update_endpoint(self.ws.store, name, status="running")

    def start_workers(self, name: str, slots: list[int]) -> None:
        """Start workers (side by side), detached from this process, and wait until they serve the configuration."""
        started = {slot: self._spawn_worker(name, slot) for slot in slots}
        record = q.get_endpoint(self.ws.store, name)
        deadline = time.monotonic() + START_TIMEOUT_S
        while started and time.monotonic() < deadline:
            for slot, process in list(started.items()):
                if process.poll() is not None:
                    for other in started.values():
                        stop_process_group(other.pid)
                    raise EndpointError(f"Worker {slot} of {name} exited at start: {self._router_log(name)}")
            applied = {w.slot for w in q.workers(self.ws.store, name) if w.applied_version > 0}
            if applied >= set(started) and client.answers(record.url + "/health"):
                return
            time.sleep(0.05)
        for process in started.values():
            stop_process_group(process.pid)
        if started:
            raise EndpointError(f"The workers of {name} did not become ready within {START_TIMEOUT_S:.0f} s.")

    def _spawn_worker(self, name: str, slot: int) -> subprocess.Popen[bytes]:
        """Record worker ``slot``, start its process and record its identity; returns without waiting."""
        record = q.get_endpoint(self.ws.store, name)
        log_path = self.ws.layout.router_log(name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        metrics = self.ws.layout.metrics(name)
        metrics.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "jupyter_mlops.deploy.router", "--endpoint", name, "--slot", str(slot)]
        command += ["--workspace", str(self.ws.root), "--metadata-uri", self.ws.metadata_uri]
        command += ["--host", record.host, "--port", str(record.port)]
        if not self.ws.is_local:
            command += ["--tracking-uri", self.ws.tracking_uri]
        q.reset_worker(self.ws.store, name, slot)  # the row first: no worker runs without one
        with open(log_path, "a") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a kernel restart does not stop it
                env={**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", MULTIPROCESS_ENV: str(metrics)},
            )
        q.set_worker(self.ws.store, name, slot, pid=process.pid, pid_start=process_start(process.pid) or None)
        return process

    # -- configuration changes ------------------------------------------------------------------------------------
    def apply(self, endpoint: str, **changes: Any) -> None:
        """Store a new configuration version (with ``changes``, JSON-encoded), signal it, and wait until every
        worker has applied it."""
        target = q.bump_config(self.ws.store, endpoint, **{k: json.dumps(v) for k, v in changes.items()})
        record = q.get_endpoint(self.ws.store, endpoint)
        self.signal_change(endpoint, target)
        deadline = time.monotonic() + APPLY_TIMEOUT_S
        while time.monotonic() < deadline:
            workers = [w for w in q.workers(self.ws.store, endpoint) if w.slot < record.instances]
            if workers and all(w.applied_version >= target for w in workers):
                return
            dead = [w.slot for w in workers if not worker_running(w)]
            if dead or not workers:
                raise EndpointError(
                    f"Worker {dead[0] if dead else 0} of {endpoint} is not running: {self._router_log(endpoint)}"
                )
            time.sleep(0.05)
        raise EndpointError(f"The workers of {endpoint} did not apply the change within {APPLY_TIMEOUT_S:.0f} s.")

    def signal_change(self, endpoint: str, version: int) -> None:
        """Tell the workers to re-read the configuration now (they also re-read it every few seconds): the file is
        replaced, never rewritten, so a worker's stat sees a new inode."""
        path = self.ws.layout.config_signal(endpoint)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_suffix(f".{os.getpid()}.tmp")
        staging.write_text(str(version))
        os.replace(staging, path)

    # -- deployment processes -------------------------------------------------------------------------------------
    def launch(
        self,
        endpoint: str,
        deployment: str,
        record: Any,
        script: str | None,
        built: Any,
        target: str,
        instances: int,
        options: dict[str, Any],
    ) -> tuple[isolated.Launch, int]:
        """Start the deployment's own process (its environment's venv, or a container) and wait until it serves;
        returns it with the launch record the caller deletes when it records the process."""
        log = self.ws.layout.deployment_log(endpoint, deployment)
        port = free_port("127.0.0.1")
        if target == "docker":
            environment = f"{built.name}:{built.version}" if built is not None else None
            launch = isolated.docker_launch(
                self.ws,
                f"{record.name}:{record.version}",
                endpoint=endpoint,
                name=deployment,
                port=port,
                log=log,
                scoring_script=script,
                environment=environment,
                workers=instances,
                options=options,
            )
        else:
            from jupyter_mlops.environments.build import venv_python

            folder = self.ws.layout.served_model(endpoint, f"{deployment}-{record.name}-{record.version}")
            if not folder.exists():
                self.ws.models.download(record.name, record.version, folder)
            launch = isolated.venv_launch(
                self.ws,
                str(venv_python(Path(built.venv_path))),
                model_dir=folder,
                name=deployment,
                port=port,
                log=log,
                scoring_script=script,
                workers=instances,
                options=options,
            )
        return self.start_recorded(endpoint, deployment, launch)

    def start_recorded(self, endpoint: str, deployment: str, launch: isolated.Launch) -> tuple[isolated.Launch, int]:
        """``isolated.start`` under a launch record written before the process starts: if this process dies before
        the deployment records it, the next reconciliation finds the record and stops what it started."""
        launched = q.add_launch(self.ws.store, endpoint, deployment, json.dumps(launch.to_options()))

        def record(started: isolated.Launch) -> None:
            q.update_launch(self.ws.store, launched, json.dumps(started.to_options()), started.pid_start)

        try:
            return isolated.start(self.ws, launch, on_spawn=record), launched
        except BaseException:  # start() stopped it
            q.remove_launch(self.ws.store, launched)
            raise

    def stop_unrecorded(self, endpoint: str, *, older_than_s: float) -> list[str]:
        """Stop deployment processes that were started but never recorded (their starter died meanwhile)."""
        from dataclasses import replace
        from datetime import timedelta

        from jupyter_mlops.store.schema import as_utc, utcnow

        cutoff = utcnow() - timedelta(seconds=older_than_s)
        stale = [e for e in q.launches(self.ws.store, endpoint) if as_utc(e.started_at) <= cutoff]
        for entry in stale:
            launch = isolated.Launch(**json.loads(entry.launch))
            isolated.stop(replace(launch, pid_start=entry.pid_start) if entry.pid_start else launch)
            q.remove_launch(self.ws.store, entry.id)
        return [f"a process of deployment {e.deployment} was started but never recorded: stopped" for e in stale]

    def stop_endpoint(self, name: str) -> None:
        """Stop every process of endpoint ``name``: its workers, its deployments' processes, unrecorded launches."""
        for worker in q.workers(self.ws.store, name):
            if worker_running(worker):
                stop_process_group(worker.pid)
        for row in q.deployments(self.ws.store, name):
            launch = launch_of(row.options)
            if launch is not None:
                isolated.stop(launch)
        self.stop_unrecorded(name, older_than_s=0)

    # -- reconciliation -------------------------------------------------------------------------------------------
    def reconcile(self, record: EndpointRecord) -> EndpointRecord:
        """Workers and deployment processes that should run but do not are reported (``record.note``) and
        restarted."""
        if record.status not in ("running", "crashed"):
            return record
        notes = []
        workers = {w.slot: w for w in q.workers(self.ws.store, record.name)}
        for slot in range(record.instances):
            worker = workers.get(slot)
            if worker is not None and worker_running(worker):
                continue
            q.update_endpoint(self.ws.store, record.name, status="crashed")
            try:
                self.start_workers(record.name, [slot])
                notes.append(f"worker {slot} had crashed and was restarted")
            except MlopsError as exc:
                notes.append(f"worker {slot} crashed and could not be restarted: {exc}")
        notes += self._reconcile_deployments(record.name)
        if not any("could not" in note for note in notes):
            q.update_endpoint(self.ws.store, record.name, status="running")
        record = q.get_endpoint(self.ws.store, record.name)
        if notes:
            record.note = "; ".join(notes)  # type: ignore[attr-defined]
        return record

    def _reconcile_deployments(self, endpoint: str) -> list[str]:
        rows = q.deployments(self.ws.store, endpoint, active=True)
        notes = self.stop_unrecorded(endpoint, older_than_s=UNRECORDED_AFTER_S)
        for row in rows:
            launch = launch_of(row.options)
            if launch is None or isolated.running(launch):
                continue
            try:  # same port and key: the workers need no change
                restarted, launched = self.start_recorded(endpoint, row.name, launch)
            except MlopsError as exc:
                notes.append(f"deployment {row.name} stopped and could not be restarted: {exc}")
                continue
            q.record_process(self.ws.store, row.id, restarted.to_options(), launched)
            notes.append(f"deployment {row.name} had stopped and was restarted")
        return notes

    def _router_log(self, name: str, lines: int = 20) -> str:
        return tail(self.ws.layout.router_log(name), lines)


__all__ = ["APPLY_TIMEOUT_S", "START_TIMEOUT_S", "UNRECORDED_AFTER_S", "Supervisor", "launch_of", "tail"]
