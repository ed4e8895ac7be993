"""Process supervision of online endpoints: the processes behind the records, started, checked, restarted, stopped.

The store says what should run; the supervisor makes it so. Every process is recorded before it starts, so none
ever runs unrecorded: a router worker by its slot's row (``mlops_endpoint_workers``, which a worker started by a
control plane that died before writing its pid claims for itself), a deployment process by a launch row
(``mlops_deployment_launches``) until the deployment's options record it, and the endpoint's supervisor process by
its endpoint's row (``supervisor``). A recorded process is ours only while its pid *and* its start time match
(``ProcessIdentity``): a pid the system gave to another process after a crash is never waited on, taken as running
or stopped. Rows written before start times were recorded go by the pid alone.

Each endpoint has one supervisor process (``watch.py``), started with it: it checks a few times a second whether
its workers and deployment processes still run and restarts those that died, with a back-off when one keeps dying
at start. Its workers check every second that it runs and start a new one when it does not (``restarts.py``);
``list``/``show`` still reconcile too, here. Whoever restarts a process first claims it with a conditional write of
what it saw dead, so two never restart the same one; each restart is recorded (``restarts.record_restart``).

Changes reach the workers as a new configuration version in the store plus a signal file; ``apply`` returns once
every worker has applied it.
"""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops.deploy import client, isolated
from jupyter_mlops.deploy.metrics import MULTIPROCESS_ENV
from jupyter_mlops.deploy.restarts import (
    CLAIM,
    RUNNING,
    age_s,
    exit_reason,
    note_of,
    record_restart,
    revive_supervisor,
    supervisor_alive,
)
from jupyter_mlops.exceptions import EndpointError, MlopsError
from jupyter_mlops.processes import ProcessIdentity, free_port, process_start, stop_process_group
from jupyter_mlops.store import endpoints as q
from jupyter_mlops.store.schema import as_utc, utcnow

if TYPE_CHECKING:
    from jupyter_mlops.store.endpoints import EndpointRecord, EndpointWorker
    from jupyter_mlops.store.schema import Deployment
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


def last_error(log: Path, host: str, port: int | None) -> str:
    """What a process that exited at start says last in its log: the error it ended with (a port in use said so)."""
    lines = [line for line in tail(log, 60).splitlines() if line.strip()]
    last = next((line for line in reversed(lines) if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b", line)), "")
    if "Errno 98" in last or "Address already in use" in last:
        return f"port {port} on {host} is in use"
    return last.strip() or (lines[-1].strip() if lines else "it wrote nothing")


def start_failure(log: Path, host: str, port: int | None) -> str:
    """One line saying why a process exited at start, and where its log is."""
    return f"{last_error(log, host, port)} (its log: {log})"


def port_in_use(host: str, port: int) -> bool:
    """Whether something listens on ``host:port`` (also a socket that shares its port, as workers do)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


class Supervisor:
    """The processes of one workspace's endpoints, as the control plane (and the supervisor process) handle them."""

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

    def start_workers(self, name: str, slots: list[int], *, claimed: bool = False) -> None:
        """Start workers (side by side), detached from this process, and wait until they serve the configuration.
        ``claimed``: their rows were claimed for a restart (``q.claim_worker``) and are not written again."""
        started = {slot: self.spawn_worker(name, slot, fresh=not claimed) for slot in slots}
        record = q.get_endpoint(self.ws.store, name)
        deadline = time.monotonic() + START_TIMEOUT_S
        while started and time.monotonic() < deadline:
            for slot, process in list(started.items()):
                if process.poll() is not None:
                    for other in started.values():
                        stop_process_group(other.pid)
                    why = start_failure(self.ws.layout.router_log(name), record.host, record.port)
                    raise EndpointError(f"Worker {slot} of {name} exited at start: {why}")
            applied = {w.slot for w in q.workers(self.ws.store, name) if w.applied_version > 0}
            if applied >= set(started) and client.answers(record.url + "/health"):
                return
            time.sleep(0.05)
        for process in started.values():
            stop_process_group(process.pid)
        if started:
            raise EndpointError(
                f"The workers of {name} did not become ready within {START_TIMEOUT_S:.0f} s "
                f"(their log: {self.ws.layout.router_log(name)})."
            )

    def spawn_worker(self, name: str, slot: int, *, fresh: bool = True) -> subprocess.Popen[bytes]:
        """Record worker ``slot`` (unless ``fresh`` is False: its row was claimed), start its process and record its
        identity; returns without waiting."""
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
        if fresh:
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

    # -- the supervisor process -------------------------------------------------------------------------------------
    def start_supervisor(self, name: str) -> subprocess.Popen[bytes] | None:
        """Start the endpoint's supervisor process (while the endpoint is created); ``wait_supervisor`` waits."""
        return revive_supervisor(self.ws, name, by="create", statuses=("creating",))

    def wait_supervisor(self, name: str, process: subprocess.Popen[bytes] | None) -> None:
        """Until the supervisor started as ``process`` has recorded itself (it then checks every ``POLL_S``)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            state = q.supervisor_state(self.ws.store, name)
            if state is not None and state.supervisor and not state.supervisor.startswith(CLAIM):
                return
            if process is None or process.poll() is not None:
                why = start_failure(self.ws.layout.router_log(name), "", None)
                raise EndpointError(f"The supervisor of {name} exited at start: {why}")
            time.sleep(0.05)
        raise EndpointError(f"The supervisor of {name} did not start within {START_TIMEOUT_S:.0f} s.")

    def stop_supervisor(self, name: str) -> None:
        """Stop the endpoint's supervisor (first, before its processes, so it restarts none of them)."""
        state = q.supervisor_state(self.ws.store, name)
        identity = ProcessIdentity.parse(state.supervisor) if state and state.supervisor else None
        if identity is not None and not state.supervisor.startswith(CLAIM) and identity.local and identity.alive():
            stop_process_group(identity.pid)

    # -- configuration changes ------------------------------------------------------------------------------------
    def apply(self, endpoint: str, **changes: Any) -> None:
        """Store a new configuration version (with ``changes``, JSON-encoded), signal it, and wait until every
        worker has applied it. A dead worker is waited for while a supervisor runs (it restarts it, and a new
        worker reads the newest configuration), for at most ``START_TIMEOUT_S``."""
        target = q.bump_config(self.ws.store, endpoint, **{k: json.dumps(v) for k, v in changes.items()})
        record = q.get_endpoint(self.ws.store, endpoint)
        self.signal_change(endpoint, target)
        began = time.monotonic()
        deadline = began + APPLY_TIMEOUT_S
        while time.monotonic() < deadline:
            workers = [w for w in q.workers(self.ws.store, endpoint) if w.slot < record.instances]
            if workers and all(w.applied_version >= target for w in workers):
                return
            dead = [w.slot for w in workers if not worker_running(w)]
            if dead or not workers:
                state = q.supervisor_state(self.ws.store, endpoint)
                supervised = state is not None and supervisor_alive(state)
                if not supervised or time.monotonic() - began > START_TIMEOUT_S:
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

    def restart_deployment(
        self, endpoint: str, row: Deployment, launch: isolated.Launch, claim: str
    ) -> tuple[isolated.Launch, subprocess.Popen[bytes] | None] | None:
        """Claim the dead process of deployment ``row`` and start it again on the same port with the same key (the
        workers need no change); recorded at once, without waiting until it serves. None when another supervisor
        claimed it first or a deploy replaced it meanwhile."""
        if not q.claim_deployment(self.ws.store, row.id, row.options, claim):
            return None
        fresh = replace(launch, pid=None, pid_start=None, container=None)
        launched = q.add_launch(self.ws.store, endpoint, row.name, json.dumps(fresh.to_options()))
        try:
            started, process = isolated.spawn(self.ws, fresh)
            q.update_launch(self.ws.store, launched, json.dumps(started.to_options()), started.pid_start)
        except BaseException:
            q.remove_launch(self.ws.store, launched)
            q.record_process(self.ws.store, row.id, launch.to_options(), launched, claim=claim)  # lets go of it
            raise
        if not q.record_process(self.ws.store, row.id, started.to_options(), launched, claim=claim):
            isolated.stop(started)
            q.remove_launch(self.ws.store, launched)
            return None
        return started, process

    def stop_unrecorded(self, endpoint: str, *, older_than_s: float) -> list[str]:
        """Stop deployment processes that were started but never recorded (their starter died meanwhile)."""
        from datetime import timedelta

        cutoff = utcnow() - timedelta(seconds=older_than_s)
        stale = [e for e in q.launches(self.ws.store, endpoint) if as_utc(e.started_at) <= cutoff]
        for entry in stale:
            launch = isolated.Launch(**json.loads(entry.launch))
            isolated.stop(replace(launch, pid_start=entry.pid_start) if entry.pid_start else launch)
            q.remove_launch(self.ws.store, entry.id)
        return [f"a process of deployment {e.deployment} was started but never recorded: stopped" for e in stale]

    def stop_endpoint(self, name: str) -> None:
        """Stop every process of endpoint ``name``: its supervisor first, then its workers, its deployments'
        processes and unrecorded launches."""
        self.stop_supervisor(name)
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
        """Workers, deployment processes and the supervisor that should run but do not are restarted; what was
        restarted since the last look (here or by the supervisor) is reported in ``record.note``. Processes being
        started by someone else are waited for, so what this returns serves."""
        if record.status not in RUNNING:
            return record
        notes: list[str] = []
        earlier = q.take_unreported(self.ws.store, record.name)
        workers = {w.slot: w for w in q.workers(self.ws.store, record.name)}
        starting = []
        for slot in range(record.instances):
            worker = workers.get(slot)
            if worker is not None and worker_running(worker):
                if worker.applied_version == 0:
                    starting.append(slot)
                continue
            if worker is not None and worker.pid is None and age_s(worker.started_at) < START_TIMEOUT_S:
                starting.append(slot)  # being started (or restarted) by another process
                continue
            if worker is not None and not q.claim_worker(self.ws.store, worker):
                starting.append(slot)  # another supervisor restarts it
                continue
            q.update_endpoint(self.ws.store, record.name, status="crashed")
            reason, restarted = exit_reason(None) if worker is not None else "it had no record", True
            try:
                self.start_workers(record.name, [slot], claimed=worker is not None)
                new_pid = next((w.pid for w in q.workers(self.ws.store, record.name) if w.slot == slot), None)
            except MlopsError as exc:
                new_pid, reason, restarted = None, f"{reason}; the restart failed: {exc}", False
            notes.append(
                record_restart(
                    self.ws,
                    record.name,
                    "worker",
                    str(slot),
                    pid=worker.pid if worker else None,
                    new_pid=new_pid,
                    reason=reason,
                    by="list/show",
                    restarted=restarted,
                    reported=True,
                )
            )
        restarted = {int(e.target) for e in earlier if e.kind == "worker" and e.target.isdigit()}
        self._wait_serving(record, starting, restarted)
        recent = {e.target for e in earlier if e.kind == "deployment"}
        notes += self._reconcile_deployments(record.name, recent)
        revive_supervisor(self.ws, record.name, by="list/show")  # a successor is logged, and noted just below
        for entry in earlier + q.take_unreported(self.ws.store, record.name):
            if note_of(entry) not in notes:
                notes.append(note_of(entry))
        if not any("could not" in note for note in notes):
            q.update_endpoint(self.ws.store, record.name, status="running")
        record = q.get_endpoint(self.ws.store, record.name)
        if notes:
            record.note = "; ".join(notes)  # type: ignore[attr-defined]
        return record

    def _wait_serving(self, record: EndpointRecord, slots: list[int], restarted: set[int]) -> None:
        """Until the workers of ``slots`` that are starting have applied the configuration (bounded; one that dies
        meanwhile is not waited for: the supervisor restarts it), and, when any was starting or lately restarted
        (``restarted``), until the endpoint answers."""
        deadline = time.monotonic() + START_TIMEOUT_S
        waited = bool(slots or restarted)
        while slots and time.monotonic() < deadline:
            rows = {w.slot: w for w in q.workers(self.ws.store, record.name)}
            slots = [
                s
                for s in slots
                if s in rows
                and rows[s].applied_version == 0
                and (worker_running(rows[s]) or (rows[s].pid is None and age_s(rows[s].started_at) < START_TIMEOUT_S))
            ]
            time.sleep(0.05 if slots else 0)
        while waited and time.monotonic() < deadline and not client.answers(record.url + "/health"):
            time.sleep(0.05)

    def _reconcile_deployments(self, endpoint: str, recent: set[str]) -> list[str]:
        """Restart dead deployment processes; wait for those restarted lately (``recent``) or being restarted by
        another process until they serve."""
        notes = self.stop_unrecorded(endpoint, older_than_s=UNRECORDED_AFTER_S)
        me = str(ProcessIdentity.current())
        for row in q.deployments(self.ws.store, endpoint, active=True):
            launch = launch_of(row.options)
            if launch is None:
                continue
            claimer = ProcessIdentity.parse(json.loads(row.options or "{}").get("restarting"))
            if claimer is not None and claimer.alive():
                recent.add(row.name)  # another process restarts it
            elif isolated.running(launch):
                pass
            else:
                try:
                    restarted = self.restart_deployment(endpoint, row, launch, me)
                    if restarted is None:
                        recent.add(row.name)
                        continue
                    started, _ = restarted
                    isolated.wait_ready(started)
                    note = record_restart(
                        self.ws,
                        endpoint,
                        "deployment",
                        row.name,
                        pid=launch.pid,
                        new_pid=started.pid,
                        reason=isolated.death_reason(launch, None, isolated.exit_reason(launch) or exit_reason(None)),
                        by="list/show",
                        reported=True,
                    )
                except MlopsError as exc:
                    note = f"deployment {row.name} stopped and could not be restarted: {exc}"
                notes.append(note)
                continue
            if row.name in recent:
                self._wait_deployment(endpoint, row.name)
        return notes

    def _wait_deployment(self, endpoint: str, name: str) -> None:
        deadline = time.monotonic() + isolated.READY_TIMEOUT_S
        while time.monotonic() < deadline:
            row = q.get_deployment(self.ws.store, endpoint, name)
            launch = launch_of(row.options) if row is not None else None
            claimer = ProcessIdentity.parse(json.loads(row.options or "{}").get("restarting")) if row else None
            if launch is None or (claimer is None and not isolated.running(launch)) or isolated.ready(launch, 0.5):
                return
            time.sleep(0.1)

    def _router_log(self, name: str, lines: int = 20) -> str:
        return tail(self.ws.layout.router_log(name), lines)


__all__ = [
    "APPLY_TIMEOUT_S",
    "RUNNING",
    "START_TIMEOUT_S",
    "UNRECORDED_AFTER_S",
    "Supervisor",
    "exit_reason",
    "launch_of",
    "port_in_use",
    "revive_supervisor",
    "tail",
]
