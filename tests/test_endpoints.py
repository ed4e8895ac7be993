"""Online endpoints with real router processes and real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator

import pytest

from jupyter_mlops import InvalidInput, ModelInUseError, NotFound, Workspace
from jupyter_mlops.deploy.endpoints import Endpoint
from tests.waiting import eventually, wait_gone


@pytest.fixture(scope="module")
def iris():
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_iris(return_X_y=True)
    return RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y), X


@pytest.fixture(scope="module")
def ws(tmp_path_factory, iris) -> Iterator[Workspace]:
    """One workspace for the module, with two versions of a model: scikit-learn (1) and ONNX (2)."""
    from skl2onnx import to_onnx

    os.environ["MLOPS_USER"] = "tester"
    workspace = Workspace(tmp_path_factory.mktemp("endpoints") / "ws")
    model, X = iris
    workspace.models.register(model, "iris")
    workspace.models.register(to_onnx(model, X[:1].astype("float32"), options={"zipmap": False}), "iris")
    yield workspace
    for info in workspace.endpoints.list():
        workspace.endpoints.delete(info.name)


@pytest.fixture(scope="module")
def endpoint(ws) -> Endpoint:
    ep = ws.endpoints.create("iris-live")
    ep.deploy("blue", "iris:1")
    ep.deploy("green", "models:/iris/2")
    ep.set_traffic({"blue": 90, "green": 10})
    return ep


def post(url: str, body: bytes | str, headers: dict[str, str] | None = None) -> tuple[int, dict, dict]:
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"{}")


def auth(ep: Endpoint) -> dict[str, str]:
    return {"Authorization": f"Bearer {ep.key}", "Content-Type": "application/json"}


def test_blue_green_split_and_header_routing(endpoint, iris):
    _, X = iris
    body = json.dumps({"inputs": X[:2].tolist()})
    answered = Counter()
    for _ in range(300):
        status, headers, payload = post(endpoint.scoring_uri, body, auth(endpoint))
        assert status == 200 and payload == {"predictions": [0, 0]}
        answered[headers["mlops-model-deployment"]] += 1
    assert set(answered) == {"blue", "green"} and 10 <= answered["green"] <= 60
    status, headers, _ = post(endpoint.scoring_uri, body, {**auth(endpoint), "mlops-model-deployment": "green"})
    assert status == 200 and headers["mlops-model-deployment"] == "green"
    assert endpoint.invoke({"dataframe_split": {"data": X[:1].tolist()}}, deployment="blue") == {"predictions": [0]}
    assert endpoint.scoring_uri.startswith("http://127.0.0.1:")


def test_auth_health_ready_metrics(endpoint, iris):
    base = endpoint.scoring_uri.rsplit("/", 1)[0]
    body = json.dumps({"inputs": iris[1][:1].tolist()})
    assert post(endpoint.scoring_uri, body)[0] == 401
    assert post(endpoint.scoring_uri, body, {"Authorization": "Bearer wrong"})[0] == 401
    with urllib.request.urlopen(base + "/health") as response:
        assert response.status == 200
    with urllib.request.urlopen(base + "/ready") as response:
        assert sorted(json.loads(response.read())["deployments"]) == ["blue", "green"]
    post(endpoint.scoring_uri, "{not json", auth(endpoint))
    with urllib.request.urlopen(base + "/metrics") as response:
        text = response.read().decode()
    assert 'mlops_requests_total{deployment="blue"}' in text
    assert 'mlops_errors_total{deployment="' in text
    assert "mlops_request_latency_seconds_bucket" in text


def test_bad_input_is_a_400_naming_the_problem_and_the_deployment_keeps_serving(endpoint, iris):
    for body, expected in [
        ("{not json", "not valid JSON"),
        (json.dumps({"rows": [[1, 2, 3, 4]]}), "exactly one of the keys"),
        (json.dumps({"inputs": [[1, 2]]}), "4 values"),
        (json.dumps({"inputs": [["a", "b", "c", "d"]]}), "number"),
        (json.dumps({"inputs": []}), "at least one row"),
    ]:
        status, _, payload = post(endpoint.scoring_uri, body, {**auth(endpoint), "mlops-model-deployment": "green"})
        assert status == 400 and expected in payload["message"], (body, payload)
    status, _, payload = post(endpoint.scoring_uri, "{}", {**auth(endpoint), "mlops-model-deployment": "nope"})
    assert status == 404 and "blue" in payload["message"]
    assert endpoint.invoke({"inputs": iris[1][:1].tolist()}) == {"predictions": [0]}


def test_azure_traffic_rules(endpoint):
    with pytest.raises(InvalidInput, match="sum to 0 or 100"):
        endpoint.set_traffic({"blue": 50, "green": 20})
    with pytest.raises(InvalidInput, match="integers"):
        endpoint.set_traffic({"blue": 50.5, "green": 49.5})
    with pytest.raises(InvalidInput, match="Unknown deployment"):
        endpoint.set_traffic({"blue": 50, "red": 50})
    with pytest.raises(InvalidInput, match="live traffic"):
        endpoint.set_mirror({"green": 20})
    with pytest.raises(InvalidInput, match="50%"):
        endpoint.set_mirror({"blue": 60})
    assert endpoint.info.traffic == {"blue": 90, "green": 10}  # nothing changed


def test_zero_downtime_during_swaps_and_replacement(endpoint, iris):
    # Given a load generator sending requests continuously
    body = json.dumps({"inputs": iris[1][:1].tolist()})
    results: list[int] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            results.append(post(endpoint.scoring_uri, body, auth(endpoint))[0])

    workers = [threading.Thread(target=load) for _ in range(4)]
    for w in workers:
        w.start()
    try:
        # When traffic moves blue -> green and back, and blue is replaced by another version, under load
        endpoint.set_traffic({"blue": 0, "green": 100})
        endpoint.deploy("blue", "iris:2")  # replaced in place
        endpoint.set_traffic({"blue": 100, "green": 0})
        endpoint.set_traffic({"blue": 90, "green": 10})
    finally:
        stop.set()
        for w in workers:
            w.join()
    # Then no request failed
    assert len(results) > 20 and set(results) == {200}
    assert {d.name: d.model for d in endpoint.info.deployments} == {"blue": "iris:2", "green": "iris:2"}
    endpoint.deploy("blue", "iris:1")


def test_mirroring_discards_the_mirrored_responses(ws, iris):
    ep = ws.endpoints.create("iris-mirror", auth="none")
    try:
        ep.deploy("blue", "iris:1")
        ep.deploy("shadow", "iris:2")
        ep.set_traffic({"blue": 100})
        ep.set_mirror({"shadow": 50})
        with pytest.raises(InvalidInput, match="mirrored"):
            ep.set_traffic({"blue": 50, "shadow": 50})
        body = json.dumps({"inputs": iris[1][:1].tolist()})
        deployments = {post(ep.scoring_uri, body)[1]["mlops-model-deployment"] for _ in range(60)}
        assert deployments == {"blue"}

        def mirrored() -> float:
            with urllib.request.urlopen(ep.scoring_uri.replace("/score", "/metrics")) as response:
                metrics = response.read().decode()
            if 'deployment="shadow"' not in metrics:
                return 0.0
            return float(metrics.split('mlops_requests_total{deployment="shadow"} ')[1].split()[0])

        eventually(lambda: mirrored() >= 10)  # mirrored requests are scored after the answer
        assert 10 <= mirrored() <= 50
        # a refused change changes nothing; traffic and mirror set together move shadow from mirrored to live
        with pytest.raises(InvalidInput, match="At most 50%"):
            ws.endpoints.set_split("iris-mirror", traffic={"blue": 0, "shadow": 100}, mirror={"blue": 60})
        assert (ep.info.traffic, ep.info.mirror) == ({"blue": 100}, {"shadow": 50})
        info = ws.endpoints.set_split("iris-mirror", traffic={"blue": 50, "shadow": 50}, mirror={})
        assert (info.traffic, info.mirror) == ({"blue": 50, "shadow": 50}, {})
    finally:
        ep.delete()


def test_data_collection(ws, endpoint, iris):
    def collected() -> list[dict]:
        files = (ws.root / "collected" / "iris-live" / "green").glob("*.jsonl")
        return [json.loads(line) for f in files for line in f.read_text().splitlines()]

    before = len(collected())
    endpoint.invoke({"inputs": iris[1][:2].tolist()}, deployment="green")
    eventually(lambda: len(collected()) > before)
    lines = collected()
    assert len(lines) == before + 1 and lines[-1]["deployment"] == "green"
    assert lines[-1]["input"] == {"inputs": iris[1][:2].tolist()} and lines[-1]["output"] == {"predictions": [0, 0]}


def test_scoring_script_with_a_code_folder(ws, tmp_path, iris):
    code = tmp_path / "code"
    code.mkdir()
    (code / "labels.txt").write_text("setosa\nversicolor\nvirginica\n")
    (code / "score.py").write_text(
        textwrap.dedent(
            """
            import json, os
            from pathlib import Path
            import mlflow.pyfunc

            def init():
                global model, labels
                model = mlflow.pyfunc.load_model(os.environ["MLOPS_MODEL_DIR"])
                labels = (Path(__file__).parent / "labels.txt").read_text().split()

            def run(raw_data):
                rows = json.loads(raw_data)["rows"]
                if rows == "boom":
                    raise RuntimeError("the model failed on purpose")
                return [labels[int(p)] for p in model.predict(rows)]
            """
        )
    )
    ep = ws.endpoints.create("iris-script", auth="none")
    try:
        ep.deploy("custom", "iris:1", scoring_script=code / "score.py")
        ep.set_traffic({"custom": 100})
        assert ep.invoke({"rows": iris[1][:1].tolist()}) == ["setosa"]
        status, _, payload = post(ep.scoring_uri, json.dumps({"rows": "boom"}))
        assert status == 500 and "failed on purpose" in payload["message"]
        assert ep.invoke({"rows": iris[1][:1].tolist()}) == ["setosa"]  # still serving
        # the deployment's own log tells what it serves and why the request failed, with the traceback
        log = ep.logs("custom")
        assert "serving iris:1" in log and "RuntimeError: the model failed on purpose" in log and "Traceback" in log
        with pytest.raises(NotFound, match="No deployment 'other' in iris-script"):
            ep.logs("other")
    finally:
        ep.delete()


def test_deletion_guard_uses_the_real_deployments(ws, tmp_path):
    f = tmp_path / "m.onnx"
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    X = np.array([[0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    proto = to_onnx(LogisticRegression().fit(X, [0, 1]), X[:1], options={"zipmap": False})
    f.write_bytes(proto.SerializeToString())
    ws.models.register(f, "guarded")
    ep = ws.endpoints.create("guard", auth="none")
    ep.deploy("only", "guarded:1")
    with pytest.raises(ModelInUseError, match="guard/only"):
        ws.models.delete("guarded", 1)
    ep.delete()
    assert ws.models.delete("guarded", 1) == [1]


def test_router_outlives_its_creator_and_a_crash_is_reported_and_restarted(ws, iris):
    # Given an endpoint created by a process that then exits (as a kernel restart would)
    script = textwrap.dedent(
        f"""
        from jupyter_mlops import Workspace
        ws = Workspace({str(ws.root)!r})
        ep = ws.endpoints.create("detached", auth="none")
        ep.deploy("blue", "iris:2")
        ep.set_traffic({{"blue": 100}})
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    ep = ws.endpoints.get("detached")
    body = {"inputs": iris[1][:1].tolist()}
    assert ep.invoke(body) == {"predictions": [0]}
    # When its router is killed
    pid = ep.info.pid
    os.kill(pid, signal.SIGKILL)
    wait_gone(pid)
    # Then listing reports and restarts it, and it serves again
    [info] = [e for e in ws.endpoints.list() if e.name == "detached"]
    assert info.note and "restarted" in info.note and info.status == "running"
    assert ep.invoke(body) == {"predictions": [0]}
    ep.delete()
    with pytest.raises(NotFound):
        ws.endpoints.get("detached")


def test_bad_requests_to_the_control_plane(ws):
    with pytest.raises(InvalidInput, match="valid endpoint name"):
        ws.endpoints.create("Bad_Name")
    with pytest.raises(NotFound, match="No endpoint named 'nope'"):
        ws.endpoints.get("nope")
    with pytest.raises(InvalidInput, match="NAME:VERSION"):
        ws.endpoints.deploy("iris-live", "x", "iris")
    with pytest.raises(NotFound, match="no version or alias '9'"):
        ws.endpoints.deploy("iris-live", "x", "iris:9")


def test_cli(ws, iris):
    def cli(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "jupyter_mlops.cli", "endpoints", *args, "--workspace", str(ws.root), "--json"],
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    created = json.loads(cli("create", "iris-cli"))
    assert created["status"] == "running" and created["scoring_uri"].startswith("http://127.0.0.1:")
    deployed = json.loads(cli("deploy", "iris-cli", "blue", "iris:2"))
    assert deployed["status"] == "active" and deployed["traffic"] == 0
    assert json.loads(cli("traffic", "iris-cli", "blue=100"))["traffic"] == {"blue": 100}
    answer = json.loads(cli("invoke", "iris-cli", "--data", json.dumps({"inputs": iris[1][:1].tolist()})))
    assert answer == {"predictions": [0]}
    assert json.loads(cli("show", "iris-cli", "--keys"))["key"]
    assert "iris-cli" in [e["name"] for e in json.loads(cli("list"))]
    cli("delete", "iris-cli")


def test_onnx_conversion_with_parity_and_served_by_default(ws, iris, tmp_path):
    from jupyter_mlops.deploy.onnx import convert_to_onnx

    model, X = iris
    original = ws.models.register(model, "iris-onnx", tags={"team": "risk"})
    conversion = convert_to_onnx(ws, f"iris-onnx:{original.version}", X[:50])
    assert conversion.max_abs_diff <= 1e-4 and conversion.speedup > 1
    assert conversion.version.tags["converted_from"] == f"iris-onnx:{original.version}"
    assert conversion.version.tags["team"] == "risk" and float(conversion.version.tags["onnx_speedup"]) > 1
    ep = ws.endpoints.create("iris-onnx", auth="none")
    try:
        served = ep.deploy("blue", f"iris-onnx:{original.version}")
        assert served.model == f"iris-onnx:{conversion.version.version}"
        assert served.requested == f"iris-onnx:{original.version}"
        opted_out = ep.deploy("plain", f"iris-onnx:{original.version}", onnx=False)
        assert opted_out.model == f"iris-onnx:{original.version}"
        ep.set_traffic({"blue": 100})
        assert ep.invoke({"inputs": X[:3].tolist()}) == {"predictions": model.predict(X[:3]).tolist()}
    finally:
        ep.delete()


def test_onnx_conversion_refuses_what_it_cannot_prove(ws, tmp_path):
    import pandas as pd

    from jupyter_mlops.deploy.onnx import convert_to_onnx

    f = tmp_path / "weights.bin"
    f.write_bytes(b"x")
    ws.models.register(f, "not-mlflow")
    with pytest.raises(InvalidInput, match="not an MLflow model"):
        convert_to_onnx(ws, "not-mlflow:1", pd.DataFrame({"a": [1.0]}))


def test_timeouts_size_limits_and_collection_off(ws, tmp_path, iris):
    slow = tmp_path / "slow.py"
    slow.write_text(
        textwrap.dedent(
            """
            import json, time

            def init():
                pass

            def run(raw_data):
                seconds = json.loads(raw_data)["sleep"]
                time.sleep(seconds)
                return {"slept": seconds}
            """
        )
    )
    ep = ws.endpoints.create("iris-limits", auth="none")
    try:
        ep.deploy("slow", "iris:1", scoring_script=slow, request_timeout_s=0.5, max_body_bytes=200, collect=False)
        ep.set_traffic({"slow": 100})
        assert ep.invoke({"sleep": 0}) == {"slept": 0}
        status, headers, payload = post(ep.scoring_uri, json.dumps({"sleep": 2}))
        assert status == 504 and "request_timeout" in payload["message"] and headers["mlops-model-deployment"] == "slow"
        status, _, payload = post(ep.scoring_uri, json.dumps({"sleep": 0, "pad": "x" * 500}))
        assert status == 413 and "max_body_bytes" in payload["message"]
        assert ep.invoke({"sleep": 0}) == {"slept": 0}  # still serving
        time.sleep(0.5)
        assert not (ws.root / "collected" / "iris-limits").exists()
    finally:
        ep.delete()


def test_wrong_types_for_a_model_without_signature_are_a_400(endpoint):
    status, _, payload = post(
        endpoint.scoring_uri,
        json.dumps({"inputs": [["a", "b", "c", "d"]]}),
        {**auth(endpoint), "mlops-model-deployment": "blue"},
    )
    assert status == 400 and "refused the input" in payload["message"]


# -- client input at the HTTP level: never a 5xx (an endpoint of its own, created last: it adds processes) --
@pytest.fixture(scope="module")
def edge(ws) -> Iterator[Endpoint]:
    """An endpoint whose processes start with a 1 s body timeout: a pickled (sk) and an ONNX (ox) deployment."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_BODY_TIMEOUT_S", "1")
        ep = ws.endpoints.create("iris-edge", auth="none")
    ep.deploy("sk", "iris:1", onnx=False)
    ep.deploy("ox", "iris:2")
    ep.set_traffic({"sk": 50, "ox": 50})
    yield ep
    ep.delete()


def raw_http(url: str, request: bytes, timeout: float = 20) -> tuple[int, dict[str, str], dict, float]:
    """Send ``request`` as it is on a socket and read the answer until the server closes: (status, headers, JSON
    body, seconds waited)."""
    import socket
    from urllib.parse import urlparse

    where = urlparse(url)
    started = time.monotonic()
    with socket.create_connection((where.hostname, where.port), timeout=timeout) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, json.loads(body), time.monotonic() - started


def test_a_body_that_never_finishes_is_a_408_after_the_body_timeout(edge, iris):
    # Given a client that announces 1,000 bytes, sends 10 and stalls
    path = edge.scoring_uri.split("/", 3)[3]
    stalled = f"POST /{path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    for deployment in ("sk", "ox"):
        request = stalled.replace("Host: x", f"Host: x\r\nmlops-model-deployment: {deployment}")
        # When it waits for the answer
        status, headers, payload, waited = raw_http(edge.scoring_uri, request.encode() + b'{"inputs":')
        # Then the body timeout answers it (408, JSON) and closes the connection, instead of holding it open
        assert status == 408 and "did not arrive within 1 s" in payload["message"], payload
        assert headers["connection"] == "close" and 0.9 <= waited < 10
    assert edge.invoke({"inputs": iris[1][:1].tolist()}) == {"predictions": [0]}  # still serving


def test_a_wrong_method_is_a_405_in_json_and_an_unknown_path_a_404(edge):
    for method in ("GET", "PUT", "DELETE"):
        request = urllib.request.Request(edge.scoring_uri, method=method)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 405 and refused.value.headers["Allow"] == "POST"
        assert refused.value.headers["Content-Type"] == "application/json"
        assert f"{method} is not allowed" in json.loads(refused.value.read())["message"]
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(edge.scoring_uri.replace("/score", "/nowhere"), timeout=30)
    assert missing.value.code == 404 and "POST /score" in json.loads(missing.value.read())["message"]


def test_a_body_in_another_format_is_a_415_and_json_in_any_of_its_spellings_is_scored(edge, iris):
    body = json.dumps({"inputs": iris[1][:1].tolist()})
    for deployment in ("sk", "ox"):
        for content_type in ("text/csv", "text/plain", "application/xml", "multipart/form-data; boundary=x"):
            status, _, payload = post(
                edge.scoring_uri, body, {"Content-Type": content_type, "mlops-model-deployment": deployment}
            )
            assert status == 415 and content_type in payload["message"], (deployment, content_type, payload)
        for content_type in (
            "application/json",
            "application/json; charset=utf-8",
            "application/json; format=pandas-split",  # MLflow 1.x spelled its formats so
            "application/vnd.api+json",
            "application/x-www-form-urlencoded",  # urllib's and curl -d's default when no type is given
        ):
            status, _, payload = post(
                edge.scoring_uri, body, {"Content-Type": content_type, "mlops-model-deployment": deployment}
            )
            assert (status, payload) == (200, {"predictions": [0]}), (deployment, content_type)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("[" * 10_000 + "]" * 10_000, "nested too deeply"),
        (json.dumps({"inputs": [[1, 2, 3, 4]]}).replace("1", "1" * 5_000, 1), "digits"),
        ('{"inputs": [[' + "1" * 400 + ", 1, 2, 3]]}", ""),  # parses, but no float holds it
        (json.dumps({"inputs": [[{"a": 1}, 2, 3, 4]]}), ""),
        (json.dumps({"inputs": [[[1], [2], [3], [4]]]}), ""),
        (json.dumps({"inputs": "abcd"}), ""),
        (json.dumps({"inputs": {"x": [1, 2, 3, 4]}}), "named tensors"),
        (json.dumps({"dataframe_split": {"columns": [{}], "data": [[1, 2, 3, 4]]}}), "columns must list"),
        (json.dumps({"dataframe_records": [1, 2]}), "list of objects"),
        (b"\xff\xfe{}", "not valid JSON"),
    ],
)
def test_malformed_or_mistyped_input_is_a_400_never_a_500(edge, body, expected):
    for deployment in ("sk", "ox"):
        status, _, payload = post(
            edge.scoring_uri, body, {"Content-Type": "application/json", "mlops-model-deployment": deployment}
        )
        assert status == 400 and expected in payload["message"], (deployment, payload)
