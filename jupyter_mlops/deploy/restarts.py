"""Who restarts what, and the record of it: the supervisor process's own record, and one per restart.

An endpoint's supervisor process is recorded in its endpoint's row (``supervisor``): a claim
``starting:<claimer>/<nonce>`` written before it starts, replaced by its ``ProcessIdentity`` once it runs. Whoever
finds it dead (a worker, every second; ``list``/``show``) claims the record with a conditional write of what it saw,
so two never start two. Every process found dead and what replaced it is a row of the supervision log, an event
(``endpoint.worker_restarted``, ``deployment.restarted``, ``endpoint.supervisor_restarted``), a line of the
endpoint's log and a note of the next ``list``/``show``.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jupyter_mlops.deploy.resources import MEMORY_EXCEEDED
from jupyter_mlops.processes import ProcessIdentity
from jupyter_mlops.store import endpoints as q
from jupyter_mlops.store.schema import as_utc, utcnow

if TYPE_CHECKING:
    from jupyter_mlops.workspace import Workspace

RUNNING = ("running", "crashed")  # the endpoint states whose processes are kept running
SUPERVISOR_START_S = 30.0  # a supervisor claimed but not recorded by then is taken for dead
SUPERVISOR_RETRY_S = 3.0  # a supervisor that died sooner after it started waits that long for its successor
CLAIM = "starting:"  # the supervisor record while one starts: "starting:<claimer's identity>/<nonce>"


def age_s(moment: datetime | None) -> float:
    return (utcnow() - as_utc(moment)).total_seconds() if moment is not None else float("inf")


def exit_reason(returncode: int | None) -> str:
    """Why a process ended, from its exit status (which only its parent learns)."""
    if returncode is None:
        return "exit status unknown (another process started it)"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


# -- the supervisor process's record ----------------------------------------------------------------------------
def supervisor_alive(state: q.SupervisorState) -> bool:
    """Whether the recorded supervisor runs, or is being started by a process that still runs (for a while)."""
    text = state.supervisor or ""
    if text.startswith(CLAIM):
        claimer = ProcessIdentity.parse(text[len(CLAIM) :].split("/")[0])
        return age_s(state.at) < SUPERVISOR_START_S and (claimer is None or claimer.alive())
    identity = ProcessIdentity.parse(text)
    return identity is not None and identity.alive()


def revive_supervisor(
    ws: Workspace, endpoint: str, *, by: str, statuses: tuple[str, ...] = RUNNING, reason: str | None = None
) -> subprocess.Popen[bytes] | None:
    """Start the endpoint's supervisor if none runs (claimed first, so two callers never start two); returns the
    process started, None when one runs, another caller claimed it, or the last one died too soon after its start
    (a crash loop waits ``SUPERVISOR_RETRY_S`` between starts)."""
    state = q.supervisor_state(ws.store, endpoint)
    if state is None or state.status not in statuses or supervisor_alive(state):
        return None
    dead = state.supervisor if state.supervisor and not state.supervisor.startswith(CLAIM) else None
    if dead and age_s(state.at) < SUPERVISOR_RETRY_S:
        return None
    claim = f"{CLAIM}{ProcessIdentity.current()}/{secrets.token_hex(4)}"
    if not q.claim_supervisor(ws.store, endpoint, seen=state.supervisor, claim=claim, statuses=statuses):
        return None
    process = spawn_supervisor(ws, endpoint, claim)
    if state.supervisor:  # a successor, not the first one
        previous = ProcessIdentity.parse(dead) if dead else None
        record_restart(
            ws,
            endpoint,
            "supervisor",
            "",
            pid=previous.pid if previous else None,
            new_pid=process.pid,
            reason=reason or (exit_reason(None) if dead else "it never recorded itself"),
            by=by,
        )
    return process


def spawn_supervisor(ws: Workspace, endpoint: str, claim: str) -> subprocess.Popen[bytes]:
    """The supervisor process of ``endpoint``, detached (its own session: it outlives whoever started it), writing
    to the endpoint's log."""
    log_path = ws.layout.router_log(endpoint)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "jupyter_mlops.deploy.watch", "--endpoint", endpoint, "--claim", claim]
    command += ["--workspace", str(ws.root), "--metadata-uri", ws.metadata_uri]
    if not ws.is_local:
        command += ["--tracking-uri", ws.tracking_uri]
    with open(log_path, "a") as log:
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"},
        )


# -- the record of a restart ------------------------------------------------------------------------------------
NOTES = {
    "worker": ("worker {target} had crashed and was restarted", "worker {target} crashed and could not be restarted"),
    "deployment": (
        "deployment {target} had stopped and was restarted",
        "deployment {target} stopped and could not be restarted",
    ),
    "supervisor": ("the supervisor had stopped and was restarted", "the supervisor stopped and could not be restarted"),
    "launch": ("a process of deployment {target} was started but never recorded: stopped",) * 2,
}


def note_of(entry: q.SupervisionEntry) -> str:
    """What ``list``/``show`` say about a supervision log entry."""
    restarted, failed = NOTES[entry.kind]
    if entry.kind == "deployment" and entry.reason.startswith(MEMORY_EXCEEDED):
        restarted = "deployment {target} " + MEMORY_EXCEEDED + " and was restarted"
    text = (restarted if entry.restarted else failed).format(target=entry.target)
    return text if entry.restarted or entry.kind == "launch" else f"{text}: {entry.reason}"


def record_restart(
    ws: Workspace,
    endpoint: str,
    kind: str,
    target: str,
    *,
    pid: int | None,
    new_pid: int | None,
    reason: str,
    by: str,
    restarted: bool = True,
    start_failures: int = 0,
    delay_s: float = 0.0,
    reported: bool = False,
) -> str:
    """A process found dead and what replaced it: a supervision log row, an event, a line of the endpoint's log
    (and of the deployment's); returns the note ``list``/``show`` give for it."""
    entry = q.log_supervision(
        ws.store,
        endpoint,
        kind=kind,
        target=target,
        pid=pid,
        new_pid=new_pid,
        reason=reason,
        restarted=restarted,
        by=by,
        start_failures=start_failures,
        delay_s=delay_s,
        reported=reported,
    )
    what = {"worker": f"worker {target}", "deployment": f"deployment {target}"}.get(kind, kind)
    if kind == "launch":
        line = f"a process of deployment {target} was started but never recorded: stopped"
    else:
        outcome = (f"restarted as pid {new_pid}" if new_pid else "restarted") if restarted else "not restarted"
        wait = f" after {delay_s:.1f} s (it died at start {start_failures} times in a row)" if delay_s else ""
        line = f"{what} (pid {pid}) died: {reason}; {outcome}{wait}"
    logs = [ws.layout.router_log(endpoint)]
    if kind == "deployment":
        logs.append(ws.layout.deployment_log(endpoint, target))
    for path in logs:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as log:
            log.write(f"{utcnow():%Y-%m-%d %H:%M:%S} WARNING supervisor ({by}): {line}\n")
    data: dict[str, Any] = {"endpointName": endpoint, "pid": pid, "newPid": new_pid, "reason": reason, "by": by}
    data.update({"restarted": entry.restarted, "startFailures": start_failures, "delayS": round(delay_s, 3)})
    data["outOfMemory"] = reason.startswith(MEMORY_EXCEEDED)  # its memory limit, not a crash
    if kind == "worker":
        ws.events.emit(
            "endpoint.worker_restarted", f"endpoints/{endpoint}/workers/{target}", {**data, "slot": int(target)}
        )
    elif kind == "deployment":
        subject = f"endpoints/{endpoint}/deployments/{target}"
        ws.events.emit("deployment.restarted", subject, {**data, "deploymentName": target})
    elif kind == "supervisor":
        ws.events.emit("endpoint.supervisor_restarted", f"endpoints/{endpoint}", data)
    return note_of(entry)


__all__ = [
    "CLAIM",
    "NOTES",
    "RUNNING",
    "age_s",
    "exit_reason",
    "note_of",
    "record_restart",
    "revive_supervisor",
    "spawn_supervisor",
    "supervisor_alive",
]
