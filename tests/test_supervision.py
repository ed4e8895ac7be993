"""Endpoints supervised without anyone asking, the deletion guard under races, start-up failures in one line.

Real router workers, a real supervisor process per endpoint, real HTTP on 127.0.0.1; every wait is a bounded poll.
Nothing here calls ``list``/``show`` until it says so (``no_reconcile`` makes them fail).
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from jupyter_mlops import InvalidInput, Workspace
from jupyter_mlops.deploy.supervision import Supervisor
from jupyter_mlops.exceptions import EndpointError
from jupyter_mlops.processes import ProcessIdentity
from tests.tiny_model import ROWS, onnx_classifier
from tests.waiting import eventually, wait_gone


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Iterator[Workspace]:
    root = tmp_path_factory.mktemp("supervision")
    workspace = Workspace(root / "ws")
    workspace.models.register(onnx_classifier(root / "m.onnx"), "light")
    yield workspace
    for info in workspace.endpoints.list():
        workspace.endpoints.delete(info.name)


@pytest.fixture
def no_reconcile(monkeypatch):
    """Call it once the endpoint is set up: from then on ``list``/``show`` (which reconcile) fail in this process,
    so whatever comes back did by itself."""

    def refused(self, record):
        raise AssertionError("list/show reconciled during a test of supervision without them")

    return lambda: monkeypatch.setattr(Supervisor, "reconcile", refused)


def answers(ws: Workspace, name: str) -> bool:
    record = ws.endpoints._record(name)
    request = urllib.request.Request(
        record.url + "/score", json.dumps({"inputs": ROWS}).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read()) == {"predictions": [0, 1]}
    except (urllib.error.URLError, OSError):
        return False


def endpoint(ws: Workspace, name: str, instances: int = 1):
    ep = ws.endpoints.create(name, auth="none", instances=instances)
    ep.deploy("blue", "light:1")
    ep.set_traffic({"blue": 100})
    return ep


def supervisor_of(ws: Workspace, name: str) -> ProcessIdentity:
    identity = ProcessIdentity.parse(ws.endpoints._record(name).supervisor)
    assert identity is not None and identity.alive()
    return identity


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    wait_gone(pid)


def test_a_killed_worker_comes_back_by_itself(ws, no_reconcile):
    ep = endpoint(ws, "alone")
    [deployment] = ep.info.deployments
    assert deployment.created_at.utcoffset() == timedelta(0)  # read back from the store, in UTC
    no_reconcile()
    try:
        # Given a one-worker endpoint and its supervisor, recorded
        supervisor = supervisor_of(ws, "alone")
        [worker] = ws.endpoints._workers("alone")
        # When its only worker is killed, /score answers again, with nobody calling list/show
        kill(worker.pid)
        assert eventually(lambda: answers(ws, "alone"), timeout=30)
        [restarted] = ws.endpoints._workers("alone")
        assert restarted.pid != worker.pid
        # Then the restart is recorded and emitted: which worker, which process, what replaced it
        [entry] = ws.endpoints.restarts("alone")
        assert (entry.kind, entry.target, entry.pid, entry.new_pid) == ("worker", "0", worker.pid, restarted.pid)
        assert entry.by == "supervisor" and entry.restarted and entry.at.tzinfo is not None
        [event] = [e for e in ws.events.tail(types=["endpoint.worker_restarted"]) if "alone" in e.subject]
        assert event.subject == "endpoints/alone/workers/0"
        assert event.data["slot"] == 0 and event.data["pid"] == worker.pid and event.data["newPid"] == restarted.pid
        # When the worker the supervisor started is killed, it can tell how it died (it is its parent)
        kill(restarted.pid)
        assert eventually(lambda: answers(ws, "alone"), timeout=30)
        second = ws.endpoints.restarts("alone")[-1]
        assert second.pid == restarted.pid and second.reason.startswith("killed by SIGKILL")
        assert f"worker 0 (pid {restarted.pid}) died: killed by SIGKILL" in ep.logs()
        assert supervisor_of(ws, "alone") == supervisor  # the same supervisor did both
    finally:
        ws.endpoints.delete("alone")


def test_with_two_workers_only_requests_in_flight_on_the_killed_one_fail(ws, no_reconcile):
    endpoint(ws, "pair", instances=2)
    no_reconcile()
    try:
        workers = ws.endpoints._workers("pair")
        assert len({w.pid for w in workers}) == 2
        record = ws.endpoints._record("pair")
        body = json.dumps({"inputs": ROWS}).encode()
        outcomes: list[tuple[float, float, bool]] = []  # (sent, answered, succeeded)
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                sent = time.monotonic()
                request = urllib.request.Request(record.url + "/score", body, {"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(request, timeout=10) as response:
                        ok = response.status == 200
                except (urllib.error.URLError, OSError):
                    ok = False
                outcomes.append((sent, time.monotonic(), ok))

        threads = [threading.Thread(target=load) for _ in range(2)]
        for thread in threads:
            thread.start()
        try:
            assert eventually(lambda: len(outcomes) > 20)
            # When one worker is killed under load
            killed_at = time.monotonic()
            kill(workers[1].pid)
            gone_at = time.monotonic()  # from here its socket is closed: no request can reach it
            # Then the supervisor restarts it, and the load goes on
            assert eventually(
                lambda: (
                    len({w.pid for w in ws.endpoints._workers("pair") if w.applied_version} - {workers[1].pid}) == 2
                ),
                timeout=30,
            )
            settled = len(outcomes)
            assert eventually(lambda: len(outcomes) > settled + 20)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        failed = [(sent, answered) for sent, answered, ok in outcomes if not ok]
        # only requests sent to the dying worker failed: each was sent before its socket closed, and answered after
        # the kill; every other one succeeded
        assert all(sent < gone_at and answered >= killed_at for sent, answered in failed), (failed, killed_at)
        assert len(outcomes) - len(failed) > 40
        print(f"{len(failed)} of {len(outcomes)} requests failed, all in flight on the killed worker")
    finally:
        ws.endpoints.delete("pair")


def test_a_killed_supervisor_is_restarted_by_a_worker(ws, no_reconcile):
    endpoint(ws, "watched")
    no_reconcile()
    try:
        supervisor = supervisor_of(ws, "watched")
        [worker] = ws.endpoints._workers("watched")
        # When the supervisor is killed, a worker starts a new one (claimed, so it is only one) and it is recorded
        kill(supervisor.pid)

        def successor() -> ProcessIdentity | None:
            identity = ProcessIdentity.parse(ws.endpoints._record("watched").supervisor)
            return identity if identity is not None and identity.pid != supervisor.pid and identity.alive() else None

        new = eventually(successor, timeout=30)
        assert new is not None
        [entry] = [e for e in ws.endpoints.restarts("watched") if e.kind == "supervisor"]
        assert entry.pid == supervisor.pid and entry.new_pid == new.pid and entry.by == "worker 0"
        [event] = [e for e in ws.events.tail(types=["endpoint.supervisor_restarted"]) if "watched" in e.subject]
        assert event.data["pid"] == supervisor.pid and event.data["newPid"] == new.pid
        assert _supervisors(ws, "watched") == [new.pid]
        # and the new supervisor restarts a killed worker
        kill(worker.pid)
        assert eventually(lambda: answers(ws, "watched"), timeout=30)
        assert ws.endpoints.restarts("watched")[-1].kind == "worker"
    finally:
        ws.endpoints.delete("watched")
    assert eventually(lambda: not _supervisors(ws, "watched"))


def test_a_worker_that_keeps_dying_at_start_is_restarted_with_a_back_off(ws, no_reconcile):
    endpoint(ws, "looping")
    no_reconcile()
    try:
        [worker] = ws.endpoints._workers("looping")
        port = ws.endpoints._record("looping").port
        # Given its port taken by another program as soon as its worker dies (the supervisor paused meanwhile, so
        # the other program gets there first): every restart exits at start
        supervisor = supervisor_of(ws, "looping")
        os.kill(supervisor.pid, signal.SIGSTOP)
        try:
            kill(worker.pid)
            squatter = socket.socket()
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
        finally:
            os.kill(supervisor.pid, signal.SIGCONT)
        try:
            failed = eventually(
                lambda: [e for e in ws.endpoints.restarts("looping") if e.start_failures >= 2][3:], timeout=90
            )
            assert failed, ws.endpoints.restarts("looping")
        finally:
            squatter.close()
        entries = ws.endpoints.restarts("looping")
        looping = [e for e in entries if e.start_failures >= 2]
        # Then each restart waited twice as long as the one before, and said why the process died
        assert [e.delay_s for e in looping[:4]] == [0.5, 1.0, 2.0, 4.0]
        for before, after in itertools.pairwise(entries):
            if after.start_failures >= 2:
                assert (after.at - before.at).total_seconds() >= after.delay_s
        reasons = [e.reason for e in looping]
        assert all(r == f"exited with code 1, at start: port {port} on 127.0.0.1 is in use" for r in reasons), reasons
        # When the port is free again, it serves again
        assert eventually(lambda: answers(ws, "looping"), timeout=60)
    finally:
        ws.endpoints.delete("looping")


def _processes_of(ws: Workspace, endpoint: str, module: str = "jupyter_mlops.deploy.") -> list[int]:
    """The processes of ``endpoint`` (router workers and supervisors, or those of ``module``) running here."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ours = str(ws.root).encode() in command and endpoint.encode() in command
        if (
            ours
            and any(part.startswith(module.encode()) for part in command)
            and ProcessIdentity.of(int(proc.name)).alive()
        ):
            found.append(int(proc.name))
    return found


def _supervisors(ws: Workspace, endpoint: str) -> list[int]:
    return _processes_of(ws, endpoint, "jupyter_mlops.deploy.watch")


def test_the_processes_of_a_removed_workspace_stop(tmp_path):
    import shutil

    # Given an endpoint whose workspace folder is then removed (its records with it)
    gone = Workspace(tmp_path / "gone")
    gone.endpoints.create("orphan", auth="none")
    assert len(_processes_of(gone, "orphan")) == 2  # its worker and its supervisor
    shutil.rmtree(gone.root)
    # Then its worker and its supervisor stop by themselves
    assert eventually(lambda: not _processes_of(gone, "orphan"), timeout=30)


# -- start-up failures ------------------------------------------------------------------------------------------
def test_creating_an_endpoint_on_a_port_in_use_says_so_in_one_line(ws, monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # From the command line: one line, a non-zero exit, nothing recorded, nothing running
        command = [sys.executable, "-m", "jupyter_mlops.cli", "endpoints", "create", "busy", "--port", str(port)]
        run = subprocess.run([*command, "--workspace", str(ws.root)], capture_output=True, text=True)
        assert run.returncode != 0
        assert run.stderr.strip().splitlines() == [
            f"error: Port {port} on 127.0.0.1 is in use: endpoint busy was not created (nothing started)."
        ]
        assert "busy" not in [r.name for r in _records(ws)] and not _processes_of(ws, "busy")
        # When the port is taken between that check and the worker's start, the worker's failure is one line too
        import jupyter_mlops.deploy.endpoints as verbs

        monkeypatch.setattr(verbs, "port_in_use", lambda host, port: False)
        with pytest.raises(EndpointError) as failed:
            ws.endpoints.create("busy", port=port)
        message = failed.value.message
        log = ws.layout.router_log("busy")
        assert message == f"Worker 0 of busy exited at start: port {port} on 127.0.0.1 is in use (its log: {log})"
        assert log.is_file() and "Address already in use" in log.read_text()
        assert "busy" not in [r.name for r in _records(ws)]
        assert eventually(lambda: not _processes_of(ws, "busy"))


def _records(ws: Workspace):
    from jupyter_mlops.store import endpoints as q

    return q.all_endpoints(ws.store)


# -- names ------------------------------------------------------------------------------------------------------
def test_endpoint_deployment_and_batch_names_follow_the_one_rule(ws):
    for bad in ("Bad_Name", "-x", "a" * 64, "dots.no", ""):
        with pytest.raises(InvalidInput, match="is not a valid endpoint name"):
            ws.endpoints.create(bad)
    assert not _records(ws)
    with pytest.raises(InvalidInput, match=r"is not a valid deployment name.*lower-case"):
        ws.endpoints.deploy("nowhere", "Blue", "light:1")  # refused before the endpoint is even looked up
    with pytest.raises(InvalidInput, match="is not a valid batch endpoint name"):
        ws.batch.create("bad/name", "light:1")
    assert ws.batch.create("Nightly_scores.v1", "light:1").name == "Nightly_scores.v1"
    ws.batch.delete("Nightly_scores.v1")


# -- the deletion guard under races -----------------------------------------------------------------------------
ROUNDS = 20
OFFSETS_S = [0.0, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.13, 0.16, 0.2, 0.25, 0.3, 0.4, 0.6, 0.9, 1.5, 2.5, 3.0]


def _race(role: str, root: str, barrier, results) -> None:
    """One side of the race, for every round: deploy ``mI:1`` to race/blue, or delete it."""
    import logging

    logging.disable(logging.WARNING)
    from jupyter_mlops import Workspace as Opened

    ws = Opened(root)
    for i in range(ROUNDS):
        barrier.wait(timeout=120)
        try:
            if role == "deploy":
                ws.endpoints.deploy("race", "blue", f"m{i}:1")
            else:
                time.sleep(OFFSETS_S[i % len(OFFSETS_S)])
                ws.models.delete(f"m{i}", 1)
            results.put((i, role, "ok", ""))
        except Exception as exc:
            results.put((i, role, type(exc).__name__, str(exc)))
        barrier.wait(timeout=120)


def test_a_deploy_and_a_delete_of_the_same_version_never_both_succeed(ws, tmp_path):
    from jupyter_mlops.store.schema import ACTIVE_DEPLOYMENT_STATES

    model = onnx_classifier(tmp_path / "race.onnx")
    ep = ws.endpoints.create("race", auth="none")
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(3), context.Queue()
    sides = [context.Process(target=_race, args=(r, str(ws.root), barrier, results)) for r in ("deploy", "delete")]
    for side in sides:
        side.start()
    seen = []
    try:
        for i in range(ROUNDS):
            ws.models.register(model, f"m{i}")
            barrier.wait(timeout=120)  # both go
            barrier.wait(timeout=120)  # both done
            outcome = dict((role, (result, message)) for _, role, result, message in (results.get() for _ in "ab"))
            deployed, deleted = outcome["deploy"][0], outcome["delete"][0]
            seen.append((deployed, deleted))
            # never both; whichever came second was refused, and said why
            assert (deployed, deleted) in (("ok", "ModelInUseError"), ("NotFound", "ok")), outcome
            # no deployment serves a deleted version
            active = {(r.model_name, r.model_version) for r in _deployments(ws) if r.status in ACTIVE_DEPLOYMENT_STATES}
            if deleted == "ok":
                assert (f"m{i}", 1) not in active
            else:
                assert (f"m{i}", 1) in active and ws.models.get(f"m{i}", 1).version == 1
            assert all(ws.models.get(name, version) for name, version in active)
            if ("ok", "ModelInUseError") in seen:  # blue serves the last version deployed
                assert ep.invoke({"inputs": ROWS}, deployment="blue") == {"predictions": [0, 1]}
    finally:
        for side in sides:
            side.join(timeout=60)
            if side.is_alive():
                side.kill()
        ws.endpoints.delete("race")
    print("deploy first:", seen.count(("ok", "ModelInUseError")), "delete first:", seen.count(("NotFound", "ok")))
    assert ("ok", "ModelInUseError") in seen and ("NotFound", "ok") in seen


def _deployments(ws: Workspace):
    from jupyter_mlops.store import endpoints as q

    return q.deployments(ws.store, "race")
