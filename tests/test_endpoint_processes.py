"""What runs behind an endpoint: several worker processes on one port, and deployments in their own environment.

Real router workers, a real virtualenv built by pip, real deployment processes, real HTTP on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_mlops import InvalidInput, Workspace
from jupyter_mlops.environments import Environments
from tests.waiting import eventually, wait_gone, zombie

PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"


@pytest.fixture(scope="module")
def iris():
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_iris(return_X_y=True)
    return RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y), X


@pytest.fixture(scope="module")
def ws(tmp_path_factory, iris) -> Iterator[Workspace]:
    """A workspace with iris:1 (scikit-learn) and iris:2 (ONNX), and an environment with onnxruntime."""
    from skl2onnx import to_onnx

    root = tmp_path_factory.mktemp("processes")
    workspace = Workspace(root / "ws")
    model, X = iris
    workspace.models.register(model, "iris")
    workspace.models.register(to_onnx(model, X[:1].astype("float32"), options={"zipmap": False}), "iris")
    spec = root / "envs" / "serving.yaml"
    spec.parent.mkdir()
    spec.write_text(f'name: serving\npython: "{PYTHON}"\npip: [numpy, onnxruntime, pyyaml]\n')
    Environments(workspace).register(spec)
    yield workspace
    for info in workspace.endpoints.list():
        workspace.endpoints.delete(info.name)
    Environments(workspace).remove("serving")


def metrics(ep) -> str:
    with urllib.request.urlopen(ep.scoring_uri.replace("/score", "/metrics")) as response:
        return response.read().decode()


def requests_of(text: str, deployment: str) -> float:
    return float(text.split(f'mlops_requests_total{{deployment="{deployment}"}} ')[1].split()[0])


def test_instances_are_worker_processes_sharing_the_port(ws, iris):
    ep = ws.endpoints.create("workers", auth="none")
    try:
        # Given a deployment asking for two instances
        ep.deploy("blue", "iris:2", instances=2)
        ep.set_traffic({"blue": 100})
        workers = ws.endpoints._workers("workers")
        assert ep.info.instances == 2 and len({w.pid for w in workers}) == 2
        # When requests arrive on new connections
        body = {"inputs": iris[1][:1].tolist()}
        for _ in range(60):
            assert ep.invoke(body) == {"predictions": [0]}
        # Then both workers answered (each collects into its own file), and /metrics counts all of them
        folder = ws.root / "collected" / "workers" / "blue"

        def collectors() -> set[int]:
            return {int(path.name.split(".")[1]) for path in folder.glob("*.jsonl")}

        eventually(lambda: collectors() == {w.pid for w in workers})
        assert collectors() == {w.pid for w in workers}
        assert eventually(lambda: requests_of(metrics(ep), "blue") == 60)
        # When one worker dies, the endpoint keeps serving; it is restarted (by the supervisor, or by listing if
        # that comes first), and listing reports it
        os.kill(workers[1].pid, signal.SIGKILL)
        wait_gone(workers[1].pid)
        assert ep.invoke(body) == {"predictions": [0]}
        [info] = [e for e in ws.endpoints.list() if e.name == "workers"]
        assert info.note == "worker 1 had crashed and was restarted" and info.status == "running"
        assert len({w.pid for w in ws.endpoints._workers("workers")} - {w.pid for w in workers}) == 1
    finally:
        ep.delete()
    assert not ws.endpoints._workers("workers")


def test_a_traffic_switch_reaches_every_worker_before_it_returns(ws, iris):
    ep = ws.endpoints.create("switch", auth="none", instances=2)
    try:
        ep.deploy("blue", "iris:2")
        ep.deploy("green", "iris:1")
        ep.set_traffic({"blue": 100})
        body = json.dumps({"inputs": iris[1][:1].tolist()}).encode()
        seen: list[tuple[int, str]] = []
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                request = urllib.request.Request(ep.scoring_uri, body, {"Content-Type": "application/json"})
                with urllib.request.urlopen(request) as response:
                    seen.append((response.status, response.headers["mlops-model-deployment"]))

        threads = [threading.Thread(target=load) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(0.5)
            ep.set_traffic({"green": 100})
            switched = len(seen)
            time.sleep(0.5)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        # every request succeeded, and once set_traffic returned no worker answered with blue any more
        assert {status for status, _ in seen} == {200}
        assert switched > 10 and {name for _, name in seen[switched + 4 :]} == {"green"}
    finally:
        ep.delete()


def test_no_worker_runs_without_a_record(ws, iris):
    import subprocess

    from sqlalchemy import update

    from jupyter_mlops.store.endpoints import EndpointWorker

    ep = ws.endpoints.create("owned", auth="none")
    try:
        ep.deploy("blue", "iris:2")
        ep.set_traffic({"blue": 100})
        [worker] = ws.endpoints._workers("owned")
        # Given the control plane died after starting a worker and before writing its pid
        with ws.store.session() as session:
            session.execute(update(EndpointWorker).where(EndpointWorker.endpoint == "owned").values(pid=None))
        # Then the worker writes its own pid into its record at its next read of the store
        deadline = time.monotonic() + 10
        while ws.endpoints._workers("owned")[0].pid is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ws.endpoints._workers("owned")[0].pid == worker.pid
        # Given a second worker for the same slot that the store does not record (a restart raced a crash)
        record = ws.endpoints._record("owned")
        command = [sys.executable, "-m", "jupyter_mlops.deploy.router", "--endpoint", "owned", "--slot", "0"]
        command += ["--workspace", str(ws.root), "--metadata-uri", ws.metadata_uri, "--port", str(record.port)]
        stray = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # Then it stops by itself, and the recorded worker goes on serving
        assert stray.wait(timeout=30) == 0, stray.stderr.read().decode()
        assert "has no record of this process" in stray.stderr.read().decode()
        assert ep.invoke({"inputs": iris[1][:1].tolist()}) == {"predictions": [0]}
        assert [w.pid for w in ws.endpoints._workers("owned")] == [worker.pid]
    finally:
        ep.delete()


START_THEN = """
import json, os, signal, sys, threading, time
from sqlalchemy import select
from jupyter_mlops import Workspace
from jupyter_mlops.store.endpoints import DeploymentLaunch

ws = Workspace(sys.argv[1])


def then():  # as soon as the deployment process runs (and before it is ready)
    while True:
        with ws.store.session() as session:
            entry = session.scalars(select(DeploymentLaunch)).first()
        if entry is not None and json.loads(entry.launch)["pid"]:
            print(json.loads(entry.launch)["pid"], flush=True)
            if sys.argv[2] == "die":
                os._exit(3)
            os.kill(os.getpid(), signal.SIGINT)
            return
        time.sleep(0.01)


threading.Thread(target=then, daemon=True).start()
try:
    ws.endpoints.deploy("starting", "green", "iris:2", environment="serving", scoring_script=sys.argv[3])
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""

# A deployment process that never becomes ready: the interrupt (or the death of the deploying process) always
# lands while it starts, however slow the machine. With a process that got ready first, a busy machine let the
# deploy return before the interrupt came, and the child printed only the pid.
NEVER_READY = """
import time


def init():
    while True:
        time.sleep(1)


def run(data):
    return data
"""


def test_a_deployment_process_is_never_left_running_unrecorded(ws, tmp_path):
    import subprocess

    from sqlalchemy import select, update

    from jupyter_mlops.store.endpoints import DeploymentLaunch

    def launches() -> list[DeploymentLaunch]:
        with ws.store.session() as session:
            return list(session.scalars(select(DeploymentLaunch)).all())

    script = tmp_path / "score.py"
    script.write_text(NEVER_READY)
    ws.endpoints.create("starting", auth="none")
    try:
        # When the user interrupts a deployment while its process starts, that process is stopped
        child = [sys.executable, "-c", START_THEN, str(ws.root)]
        run = subprocess.run([*child, "interrupt", str(script)], capture_output=True)
        assert len(run.stdout.split()) == 2, (run.stdout.decode(), run.stderr.decode())
        pid, said = run.stdout.decode().split()
        assert said == "interrupted", run.stderr.decode()
        assert not launches() and not Path(f"/proc/{pid}").exists()
        # When the deploying process dies while the deployment process starts, the launch stays recorded
        run = subprocess.run([*child, "die", str(script)], capture_output=True)
        assert run.returncode == 3, run.stderr.decode()
        pid = int(run.stdout.decode())
        [entry] = launches()
        assert entry.deployment == "green" and json.loads(entry.launch)["pid"] == pid
        # and once a start would have timed out, reconciliation stops what was never recorded
        with ws.store.session() as session:
            session.execute(update(DeploymentLaunch).values(started_at=entry.started_at.replace(year=2000)))
        info = ws.endpoints.show("starting")
        assert info.note == "a process of deployment green was started but never recorded: stopped"
        assert not launches() and not info.deployments
        wait_gone(pid)
        assert not Path(f"/proc/{pid}").exists() or zombie(pid)
    finally:
        ws.endpoints.delete("starting")


def test_bad_instances_are_refused(ws):
    with pytest.raises(InvalidInput, match="instances is a number of worker processes"):
        ws.endpoints.create("bad", instances=0)
    with pytest.raises(InvalidInput, match="target must be 'local' or 'docker'"):
        ws.endpoints.deploy("bad", "blue", "iris:1", target="cloud")


def test_a_deployment_with_its_own_environment_runs_in_its_virtualenv(ws, iris, tmp_path):
    ep = ws.endpoints.create("isolated")
    try:
        # Given one deployment in the endpoint's workers and one in the "serving" environment
        ep.deploy("blue", "iris:2")
        info = ep.deploy("green", "iris:2", environment="serving")
        ep.set_traffic({"blue": 50, "green": 50})
        assert info.runs_in == "venv" and info.environment.startswith("serving:")
        launch = json.loads(_row(ws, "isolated", "green").options)["process"]
        venv = Environments(ws).show("serving").venv_path
        # Then it is a process of the environment's python, behind the router, with the same answers
        assert Path(launch["command"][0]).is_relative_to(venv)
        body = {"inputs": iris[1][:2].tolist()}
        assert ep.invoke(body, deployment="green") == {"predictions": [0, 0]}
        with pytest.raises(InvalidInput, match="Every row needs 4 values"):
            ep.invoke({"inputs": [[1, 2]]}, deployment="green")
        # and it is not reachable without its own key
        request = urllib.request.Request(f"http://127.0.0.1:{launch['port']}/score", json.dumps(body).encode())
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request)
        assert refused.value.code == 401
        # its log is its own
        assert "serving" in ep.logs("green") and "green" not in ep.logs("blue").replace("blue", "")
        # When its process dies, the endpoint's supervisor restarts it on the same port, with nobody asking
        os.killpg(launch["pid"], signal.SIGKILL)
        wait_gone(launch["pid"])
        assert eventually(lambda: _answers(ep, body, "green"), timeout=120)
        restarted = json.loads(_row(ws, "isolated", "green").options)["process"]
        assert restarted["port"] == launch["port"] and restarted["pid"] != launch["pid"]
        [entry] = [e for e in ws.endpoints.restarts("isolated") if e.kind == "deployment"]
        assert (entry.target, entry.pid, entry.new_pid) == ("green", launch["pid"], restarted["pid"])
        assert entry.by == "supervisor" and entry.restarted
        [event] = [e for e in ws.events.tail(types=["deployment.restarted"]) if "isolated" in e.subject]
        assert event.data["deploymentName"] == "green" and event.data["newPid"] == restarted["pid"]
        assert f"deployment green (pid {launch['pid']}) died" in ep.logs("green")
        # and the next listing reports it
        [listed] = [e for e in ws.endpoints.list() if e.name == "isolated"]
        assert listed.note == "deployment green had stopped and was restarted"
        assert ep.invoke(body, deployment="green") == {"predictions": [0, 0]}
        # When it is replaced by a scoring script in the same environment, the old process stops
        old_pid = json.loads(_row(ws, "isolated", "green").options)["process"]["pid"]
        script = tmp_path / "score.py"
        script.write_text(
            textwrap.dedent(
                """
                import json, sys
                def init():
                    pass
                def run(raw_data):
                    return {"prefix": sys.prefix, "rows": len(json.loads(raw_data)["inputs"])}
                """
            )
        )
        ep.deploy("green", "iris:1", environment="serving", scoring_script=script)
        answer = ep.invoke(body, deployment="green")
        assert Path(answer["prefix"]).resolve() == Path(venv).resolve() and answer["rows"] == 2
        assert eventually(lambda: not Path(f"/proc/{old_pid}").exists() or zombie(old_pid))
    finally:
        ep.delete()
    pid = json.loads(_row(ws, "isolated", "green").options)["process"]["pid"]
    assert not Path(f"/proc/{pid}").exists() or zombie(pid)


def _answers(ep, body, deployment: str) -> bool:
    try:
        return ep.invoke(body, deployment=deployment) == {"predictions": [0, 0]}
    except Exception:
        return False


def _row(ws: Workspace, endpoint: str, deployment: str):
    from sqlalchemy import select

    from jupyter_mlops.store.schema import Deployment

    with ws.store.session() as session:
        return session.scalar(select(Deployment).where(Deployment.endpoint == endpoint, Deployment.name == deployment))
