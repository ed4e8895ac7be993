"""The supervisor process of one endpoint: restarts its workers and deployment processes when they die.

Run as ``python -m jupyter_mlops.deploy.watch --endpoint NAME --claim CLAIM ...`` (``restarts.spawn_supervisor``).
It records itself in place of the claim it was started under and exits as soon as the record names another
process, the endpoint goes or is being deleted. Every ``POLL_S`` it reads the endpoint's workers and deployments in
one transaction and checks each recorded process with ``ProcessIdentity.alive()`` (a container: its engine, every
``DOCKER_POLL_S``); in between it checks the processes it found running every ``PID_POLL_S`` (in ``/proc``, no
store read), so a death is noticed within tens of milliseconds. A dead one is claimed (a conditional write of what
was seen dead) and started again without waiting for it, so one slow start holds up no other restart.

What it started is its child, so it can tell how that exited (an exit code, a signal); of a process started by
another (the control plane) it cannot, except a container, whose engine keeps its exit code. A process that dies
before it serves or within ``STABLE_S`` of its start died at start: the first restart is immediate, each further
one in a row waits twice as long (``BACKOFF_BASE_S`` up to ``BACKOFF_MAX_S``), so a crash loop does not spin.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import subprocess
import time
from typing import TYPE_CHECKING

from jupyter_mlops.deploy import isolated
from jupyter_mlops.deploy.restarts import RUNNING, age_s, exit_reason, record_restart
from jupyter_mlops.deploy.series import SeriesWriter
from jupyter_mlops.deploy.supervision import (
    START_TIMEOUT_S,
    UNRECORDED_AFTER_S,
    Supervisor,
    last_error,
    launch_of,
    worker_running,
)
from jupyter_mlops.processes import ProcessIdentity
from jupyter_mlops.store import endpoints as q

if TYPE_CHECKING:
    from jupyter_mlops.store.endpoints import EndpointWorker
    from jupyter_mlops.store.schema import Deployment
    from jupyter_mlops.workspace import Workspace

log = logging.getLogger("jupyter_mlops.supervisor")

POLL_S = 0.25  # the store is read this often
PID_POLL_S = 0.05  # the processes read from it are checked this often (in /proc: microseconds)
DOCKER_POLL_S = 1.0  # a container's state is a call to its engine
UNRECORDED_POLL_S = 5.0
STABLE_S = 5.0  # a process that dies sooner after its start died at start
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0
READY_CHECK_S = 0.2  # the timeout of one readiness check of a restarted deployment process
KEEP_EXITED_S = 60.0  # how long the exit status of a child stays known after it exited


def backoff_s(start_failures: int) -> float:
    """The wait before the next restart of a process that died at start ``start_failures`` times in a row."""
    if start_failures <= 1:
        return 0.0
    return min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (start_failures - 2))


class Death:
    """A process found dead, waiting for its restart (now, or after a back-off)."""

    def __init__(self, seen: object, reason: str, failures: int) -> None:
        self.seen = seen  # what identified the dead process (pid or container): a new one is another death
        self.reason = reason
        self.failures = failures
        self.delay = backoff_s(failures)
        self.due = time.monotonic() + self.delay


class Watch:
    """The checks of one endpoint's processes, as the supervisor process runs them."""

    def __init__(self, ws: Workspace, endpoint: str) -> None:
        self.ws = ws
        self.endpoint = endpoint
        self.supervisor = Supervisor(ws)
        self.identity = ProcessIdentity.current()
        self.children: dict[int, subprocess.Popen[bytes]] = {}  # what it started, by pid: it learns how they exit
        self.exited: dict[int, float] = {}  # when a child was found exited
        self.born: dict[str, float] = {}  # when it started the current process of a worker or deployment
        self.failures: dict[str, int] = {}  # deaths at start in a row
        self.dead: dict[str, Death] = {}
        self.starting: dict[str, isolated.Launch] = {}  # deployment processes it restarted, until they serve
        self.stopping = False
        self._docker_at = 0.0
        self._unrecorded_at = time.monotonic()
        self.watched: list[ProcessIdentity] = []  # the running processes the last read found, checked in between
        self.series = SeriesWriter(ws, endpoint)

    def run(self, claim: str) -> None:
        """Record itself in place of ``claim``, then check until stopped, replaced, or the endpoint goes."""
        if not q.register_supervisor(self.ws.store, self.endpoint, claim, str(self.identity)):
            log.warning("supervisor of %s: another one took over before this one started; exiting", self.endpoint)
            return
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        log.info("supervisor of %s runs as pid %d", self.endpoint, self.identity.pid)
        while not self.stopping:
            try:
                if not self.check():
                    break
            except Exception:  # the store is busy or gone for a moment: check again
                log.exception("supervisor of %s: a check failed; retrying", self.endpoint)
            self.pause()
        log.info("supervisor of %s stops", self.endpoint)

    def pause(self) -> None:
        """Until the next read of the store, or sooner when a process it found running dies."""
        deadline = time.monotonic() + POLL_S
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(PID_POLL_S)
            if not all(identity.alive() for identity in self.watched):
                return

    def check(self) -> bool:
        """One look at every process; False when this supervisor should exit."""
        seen = q.snapshot(self.ws.store, self.endpoint)
        record = seen.record
        if record is None or record.status == "deleting" or record.supervisor != str(self.identity):
            return False
        if not self.ws.root.exists():  # the workspace was removed: its workers stop by themselves, and this stops
            log.warning("supervisor of %s: its workspace %s is gone: stopping", self.endpoint, self.ws.root)
            for row in seen.deployments:
                launch = launch_of(row.options)
                if launch is not None:
                    isolated.stop(launch)
            return False
        if record.status not in RUNNING:
            return True
        for worker in seen.workers:
            if worker.slot < record.instances:
                self.check_worker(worker)
        now = time.monotonic()
        docker_due = now - self._docker_at >= DOCKER_POLL_S
        if docker_due:
            self._docker_at = now
        for row in seen.deployments:
            self.check_deployment(row, docker_due=docker_due)
        if now - self._unrecorded_at >= UNRECORDED_POLL_S:
            self._unrecorded_at = now
            self.stop_unrecorded()
        self.watched = [ProcessIdentity(w.pid, w.pid_start or "") for w in seen.workers if w.pid and worker_running(w)]
        for row in seen.deployments:
            launch = launch_of(row.options)
            if launch is not None and launch.kind == "venv" and launch.process_alive():
                self.watched.append(ProcessIdentity(launch.pid or 0, launch.pid_start or ""))
        for pid, process in list(self.children.items()):  # reap what exited, keeping its exit status a while
            if process.poll() is not None and now - self.exited.setdefault(pid, now) > KEEP_EXITED_S:
                del self.children[pid], self.exited[pid]
        try:
            self.series.tick(record)
        except Exception:  # the series is a picture of the past: it never holds up a restart
            log.exception("supervisor of %s: writing its live figures failed", self.endpoint)
        return True

    # -- workers ------------------------------------------------------------------------------------------------
    def check_worker(self, worker: EndpointWorker) -> None:
        key = f"worker {worker.slot}"
        if worker.pid is None:
            if age_s(worker.started_at) < START_TIMEOUT_S:
                return  # being started: its starter records it, or it claims its row itself
        elif worker_running(worker):
            if worker.applied_version > 0 and key in self.born and time.monotonic() - self.born[key] >= STABLE_S:
                self.failures.pop(key, None)
            return
        elif (
            not self._ours(key, worker.pid)
            and worker.applied_version == 0
            and age_s(worker.started_at) < START_TIMEOUT_S
        ):
            return  # died at start under whoever started it: that starter says so
        death = self._death(key, worker.pid, at_start=worker.applied_version == 0, lived_s=age_s(worker.started_at))
        if time.monotonic() < death.due:
            return
        del self.dead[key]
        if not q.claim_worker(self.ws.store, worker):
            return  # another supervisor restarts it
        new_pid, reason, restarted = None, death.reason, True
        try:
            process = self.supervisor.spawn_worker(self.endpoint, worker.slot, fresh=False)
            self.children[process.pid] = process
            self.born[key] = time.monotonic()
            new_pid = process.pid
        except Exception as exc:
            reason, restarted = f"{reason}; the restart failed: {type(exc).__name__}: {exc}", False
        record_restart(
            self.ws,
            self.endpoint,
            "worker",
            str(worker.slot),
            pid=worker.pid,
            new_pid=new_pid,
            reason=reason,
            by="supervisor",
            restarted=restarted,
            start_failures=death.failures,
            delay_s=death.delay,
        )

    # -- deployment processes -------------------------------------------------------------------------------------
    def check_deployment(self, row: Deployment, *, docker_due: bool) -> None:
        launch = launch_of(row.options)
        if launch is None or (launch.kind == "docker" and not docker_due):
            return
        key = f"deployment {row.name}"
        claimer = ProcessIdentity.parse(json.loads(row.options or "{}").get("restarting"))
        if claimer is not None and claimer.alive():
            return  # another process restarts it
        if claimer is None and isolated.running(launch):
            self._check_ready(key, row.name, launch)
            return
        own = launch.pid in self.children
        at_start = row.name in self.starting
        lived = time.monotonic() - self.born[key] if own and key in self.born else float("inf")
        death = self._death(key, launch.pid or launch.container, at_start=at_start, lived_s=lived, launch=launch)
        if time.monotonic() < death.due:
            return
        del self.dead[key]
        self.starting.pop(row.name, None)
        new_pid, reason, restarted = None, death.reason, True
        try:
            started = self.supervisor.restart_deployment(self.endpoint, row, launch, str(self.identity))
        except Exception as exc:
            started, reason, restarted = None, f"{reason}; the restart failed: {type(exc).__name__}: {exc}", False
            self.starting[row.name] = launch
        else:
            if started is None:
                return  # claimed by another, or replaced by a deploy meanwhile
        if started is not None:
            fresh, process = started
            if process is not None:
                self.children[process.pid] = process
            self.starting[row.name] = fresh
            self.born[key] = time.monotonic()
            new_pid = fresh.pid
        record_restart(
            self.ws,
            self.endpoint,
            "deployment",
            row.name,
            pid=launch.pid,
            new_pid=new_pid,
            reason=reason,
            by="supervisor",
            restarted=restarted,
            start_failures=death.failures,
            delay_s=death.delay,
        )

    def _check_ready(self, key: str, name: str, launch: isolated.Launch) -> None:
        """A restarted process that serves is up; one that does not within the start timeout is stopped (and so
        restarted, as dead at start)."""
        if name not in self.starting:
            if key in self.born and time.monotonic() - self.born[key] >= STABLE_S:
                self.failures.pop(key, None)
            return
        if isolated.ready(launch, READY_CHECK_S):
            del self.starting[name]
            log.info("supervisor of %s: deployment %s serves again", self.endpoint, name)
        elif time.monotonic() - self.born.get(key, 0.0) > isolated.READY_TIMEOUT_S:
            log.warning("supervisor of %s: deployment %s did not become ready: stopping it", self.endpoint, name)
            isolated.stop(launch)

    # -- shared ---------------------------------------------------------------------------------------------------
    def _ours(self, key: str, pid: int | None) -> bool:
        """Whether this supervisor started that process (its death may already be noticed, waiting for a restart)."""
        return pid in self.children or (key in self.dead and self.dead[key].seen == pid)

    def _death(
        self, key: str, seen: object, *, at_start: bool, lived_s: float, launch: isolated.Launch | None = None
    ) -> Death:
        """The death of what ``seen`` identifies, noticed once: why it died, and how long to wait."""
        death = self.dead.get(key)
        if death is not None and death.seen == seen:
            return death
        process = self.children.pop(seen, None) if isinstance(seen, int) else None
        self.exited.pop(seen, None)  # type: ignore[call-overload]
        returncode = _exit_status(process) if process is not None else None
        if process is not None:
            reason = exit_reason(returncode)
        elif launch is not None and launch.kind == "docker":
            reason = isolated.exit_reason(launch) or exit_reason(None)
        else:
            reason = exit_reason(None)
        if launch is not None:  # its memory limit, said as such rather than as a crash
            reason = isolated.death_reason(launch, returncode, reason)
        died_at_start = at_start or lived_s < STABLE_S
        failures = self.failures.get(key, 0) + 1 if died_at_start else 0
        if died_at_start:
            reason += ", at start" if at_start else f", {lived_s:.1f} s after its start"
        if died_at_start and process is not None and process.returncode and key.startswith("worker"):
            record = q.get_endpoint(self.ws.store, self.endpoint)  # its log's last error says why
            reason += f": {last_error(self.ws.layout.router_log(self.endpoint), record.host, record.port)}"
        self.failures[key] = failures
        self.dead[key] = Death(seen, reason, failures)
        if self.dead[key].delay:
            log.warning(
                "supervisor of %s: %s died at start %d times in a row: restarting it in %.1f s",
                self.endpoint,
                key,
                failures,
                self.dead[key].delay,
            )
        return self.dead[key]

    def stop_unrecorded(self) -> None:
        for note in self.supervisor.stop_unrecorded(self.endpoint, older_than_s=UNRECORDED_AFTER_S):
            name = note.removeprefix("a process of deployment ").split(" was started")[0]
            record_restart(
                self.ws, self.endpoint, "launch", name, pid=None, new_pid=None, reason="never recorded", by="supervisor"
            )


def _exit_status(process: subprocess.Popen[bytes]) -> int | None:
    """Its exit status, waiting a moment for it: a killed process with threads shows as a zombie before the last of
    its threads has exited, and only then can it be reaped."""
    try:
        return process.wait(timeout=2.0)
    except subprocess.TimeoutExpired:
        return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="jupyter_mlops.deploy.watch")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--claim", required=True, help="the claim its starter recorded for it")
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--tracking-uri")
    parser.add_argument("--metadata-uri")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from jupyter_mlops.workspace import Workspace

    ws = Workspace(args.workspace, tracking_uri=args.tracking_uri, metadata_uri=args.metadata_uri)
    Watch(ws, args.endpoint).run(args.claim)


if __name__ == "__main__":
    main()
