"""Endpoints speak MLflow's scoring protocol and the Open Inference Protocol v2, proven with clients written
elsewhere: tritonclient's HTTP client (readiness, metadata, infer in JSON and binary), MLflow's own scoring-server
client and `mlflow models serve`'s answers on the same model and bodies. Real router processes, real HTTP.

The kserve SDK is not used: every release requires cloudevents<2, and this package requires cloudevents>=2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from jupyter_mlops import Workspace
from jupyter_mlops.deploy.protocols import tensors
from jupyter_mlops.monitoring.monitors import collected_inputs
from tests.services import free_port
from tests.waiting import eventually

tritonclient_http = pytest.importorskip("tritonclient.http", reason="pip install 'tritonclient[http]'")
COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


@pytest.fixture(scope="module")
def iris():
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_iris(return_X_y=True, as_frame=True)
    return RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y), X


@pytest.fixture(scope="module")
def ws(tmp_path_factory, iris):
    """iris:1 an MLflow scikit-learn model with a signature (also kept as a folder for `mlflow models serve`),
    iris:2 its ONNX graph."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from skl2onnx import to_onnx

    model, X = iris
    root = tmp_path_factory.mktemp("protocols")
    folder = root / "iris-sklearn"
    signature = infer_signature(X, model.predict(X))
    mlflow.sklearn.save_model(model, str(folder), signature=signature, serialization_format="cloudpickle")
    workspace = Workspace(root / "ws")
    workspace.models.register(folder, "iris")
    workspace.models.register(to_onnx(model, X.to_numpy(np.float32)[:1], options={"zipmap": False}), "iris")
    workspace.sklearn_folder = folder  # type: ignore[attr-defined]
    yield workspace
    for info in workspace.endpoints.list():
        workspace.endpoints.delete(info.name)


@pytest.fixture(scope="module")
def endpoint(ws):
    ep = ws.endpoints.create("proto")  # with a key
    ep.deploy("sk", "iris:1", onnx=False)
    ep.deploy("ox", "iris:2")
    ep.set_traffic({"sk": 50, "ox": 50})
    return ep


def _triton(ep):
    return tritonclient_http.InferenceServerClient(ep.scoring_uri.split("//")[1].rsplit("/", 1)[0])


def _key(ep) -> dict[str, str]:
    return {"Authorization": f"Bearer {ep.key}"}


def call(url: str, body: bytes | None = None, headers: dict[str, str] | None = None, method: str | None = None):
    """(status, headers, body bytes)."""
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def base(ep) -> str:
    return ep.scoring_uri.rsplit("/", 1)[0]


# -- the Open Inference Protocol v2, through tritonclient ----------------------------------------------------------
def test_tritonclient_readiness_and_model_metadata(endpoint):
    client = _triton(endpoint)
    headers = _key(endpoint)
    assert client.is_server_live() and client.is_server_ready()
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
    assert client.is_model_ready("proto", headers=headers) and client.is_model_ready("proto/ox", headers=headers)
    assert not client.is_model_ready("proto/nope", headers=headers)
    assert not client.is_model_ready("proto", headers={"Authorization": "Bearer wrong"})
    onnx = client.get_model_metadata("proto/ox", headers=headers)
    assert onnx["platform"] == "onnxruntime_onnx" and onnx["versions"] == ["2"]
    assert onnx["inputs"] == [{"name": "X", "datatype": "FP32", "shape": [-1, 4]}]
    assert onnx["outputs"] == [{"name": "label", "datatype": "INT64", "shape": [-1]}]
    signature = client.get_model_metadata("proto/sk", headers=headers)  # from the MLflow signature
    assert signature["inputs"] == [{"name": c, "datatype": "FP64", "shape": [-1]} for c in COLUMNS]
    assert signature["outputs"] == [{"name": "predictions", "datatype": "INT64", "shape": [-1]}]
    assert client.get_model_metadata("proto", headers=headers)["versions"] == ["1", "2"]
    assert client.get_model_metadata("proto", "2", headers=headers)["platform"] == "onnxruntime_onnx"
    with pytest.raises(Exception, match="No model named 'other'"):
        client.get_model_metadata("other", headers=headers)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_infer(endpoint, iris, binary):
    model, X = iris
    rows = X.to_numpy(np.float32)[:5]
    client = _triton(endpoint)
    headers = _key(endpoint)
    # one tensor of rows, to the ONNX deployment
    tensor = tritonclient_http.InferInput("X", list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows, binary_data=binary)
    asked = [tritonclient_http.InferRequestedOutput("label", binary_data=binary)]
    result = client.infer("proto/ox", [tensor], outputs=asked, headers=headers, request_id="r-1")
    assert result.as_numpy("label").tolist() == model.predict(X[:5]).tolist()
    assert result.get_response()["id"] == "r-1" and result.get_response()["model_version"] == "2"
    # a tensor per column, to the scikit-learn deployment through its version
    columns = []
    for name in COLUMNS:
        column = tritonclient_http.InferInput(name, [5], "FP64")
        column.set_data_from_numpy(X[name].to_numpy()[:5], binary_data=binary)
        columns.append(column)
    result = client.infer("proto", columns, model_version="1", headers=headers)
    assert result.as_numpy("predictions").tolist() == model.predict(X[:5]).tolist()
    # the endpoint's name: the traffic split answers, with either deployment's version
    versions = Counter(
        client.infer("proto", [tensor], headers=headers).get_response()["model_version"] for _ in range(40)
    )
    assert set(versions) == {"1", "2"}


def test_tritonclient_refusals(endpoint):
    client = _triton(endpoint)
    tensor = tritonclient_http.InferInput("X", [1, 3], "FP32")
    tensor.set_data_from_numpy(np.ones((1, 3), np.float32))
    from tritonclient.utils import InferenceServerException

    with pytest.raises(InferenceServerException, match="key"):
        client.infer("proto/ox", [tensor])
    with pytest.raises(InferenceServerException, match="4 values") as refused:
        client.infer("proto/ox", [tensor], headers=_key(endpoint))
    assert refused.value.status() == "400"
    with pytest.raises(InferenceServerException, match="version 9"):
        client.infer("proto", [tensor], model_version="9", headers=_key(endpoint))


@pytest.mark.parametrize(
    "body, expected",
    [
        (b"{nope", "not valid JSON"),
        (b"[]", '"inputs"'),
        (b'{"inputs": [{"name": "X", "datatype": "FP8", "shape": [1], "data": [1]}]}', "datatype 'FP8'"),
        (b'{"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 4], "data": [1, 2]}]}', "4 values"),
        (b'{"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, "a", 4]}]}', "numbers"),
        (b'{"inputs": [{"name": "X", "datatype": "FP32", "shape": [-1, 4], "data": []}]}', "shape"),
        (b'{"inputs": [{"name": "X", "datatype": "BOOL", "shape": [1, 4], "data": [1, 2, 3, 4]}]}', "true or false"),
        (
            b'{"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}], "outputs": '
            b'[{"name": "nope"}]}',
            "No output named 'nope'",
        ),
        (
            b'{"inputs": [{"name": "a", "datatype": "FP32", "shape": [2, 2], "data": [1, 2, 3, 4]}, '
            b'{"name": "b", "datatype": "FP32", "shape": [2], "data": [1, 2]}]}',
            "each is a column",
        ),
    ],
)
def test_v2_bad_input_is_a_400_in_the_protocols_error_shape(endpoint, body, expected):
    status, _, answer = call(base(endpoint) + "/v2/models/proto/ox/infer", body, _key(endpoint))
    assert status == 400 and expected in json.loads(answer)["error"], answer


def test_v2_binary_tensors_decode_as_the_extension_writes_them():
    header = json.dumps(
        {
            "inputs": [
                {"name": "s", "datatype": "BYTES", "shape": [2], "parameters": {"binary_data_size": 11}},
                {"name": "b", "datatype": "BOOL", "shape": [2], "parameters": {"binary_data_size": 2}},
                {"name": "f", "datatype": "FP32", "shape": [2, 1], "data": [[1.5], [2.0]]},
            ]
        }
    ).encode()
    blobs = (3).to_bytes(4, "little") + b"abc" + (0).to_bytes(4, "little") + b"\x01\x00"
    request = tensors.read_request(header + blobs, str(len(header)))
    assert [t.data for t in request.inputs[:2]] == [["abc", ""], [True, False]]
    assert [float(v) for v in request.inputs[2].data] == [1.5, 2.0]  # JSON numbers kept as written
    body = json.loads(tensors.to_body(request.inputs, None))
    assert body == {"dataframe_split": {"columns": ["s", "b", "f"], "data": [["abc", True, 1.5], ["", False, 2.0]]}}
    with pytest.raises(Exception, match="bytes after the binary inputs"):
        tensors.read_request(header + blobs + b"x", str(len(header)))


# -- MLflow's scoring protocol, against `mlflow models serve` ----------------------------------------------------
@pytest.fixture(scope="module")
def mlflow_serve(ws):
    """`mlflow models serve` on iris:1's folder: its base URL."""
    port = free_port()
    mlflow = Path(sys.executable).parent / "mlflow"
    command = [str(mlflow), "models", "serve", "-m", str(ws.sklearn_folder), "--env-manager", "local"]
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"},
    )
    url = f"http://127.0.0.1:{port}"

    def pings() -> bool:
        try:
            return call(url + "/ping")[0] == 200
        except OSError:
            return process.poll() is not None  # stop waiting: it exited

    eventually(pings, timeout=180, interval=0.2)
    assert process.poll() is None, "mlflow models serve exited"
    yield url
    os.killpg(process.pid, 15)
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def open_endpoint(ws):
    """The scikit-learn version alone, without a key (MLflow's client sends none)."""
    ep = ws.endpoints.create("proto-open", auth="none")
    ep.deploy("sk", "iris:1", onnx=False)
    ep.set_traffic({"sk": 100})
    return ep


def _bodies(X) -> list[tuple[str, bytes]]:
    rows = X[:3]
    return [
        ("application/json", json.dumps({"dataframe_split": rows.to_dict(orient="split")}).encode()),
        ("application/json", json.dumps({"dataframe_records": rows.to_dict(orient="records")}).encode()),
        ("application/json", json.dumps({"inputs": rows.to_dict(orient="records")}).encode()),
        ("application/json", json.dumps({"instances": rows.to_dict(orient="records")}).encode()),
        ("application/json", json.dumps({"inputs": rows.to_dict(orient="list")}).encode()),
        ("application/json; charset=utf-8", json.dumps({"dataframe_split": rows.to_dict(orient="split")}).encode()),
        ("text/csv", rows.to_csv(index=False).encode()),
        ("application/vnd.apache.parquet", rows.to_parquet(index=False)),
        ("text/plain", b"{}"),  # 415, in plain text
        ("application/json; charset=latin-1", b"{}"),  # 415
    ]


def test_invocations_answer_as_mlflow_models_serve_byte_for_byte(mlflow_serve, open_endpoint, iris):
    _, X = iris
    ours = base(open_endpoint)
    for content_type, body in _bodies(X):
        expected = call(mlflow_serve + "/invocations", body, {"Content-Type": content_type})
        answered = call(ours + "/invocations", body, {"Content-Type": content_type})
        assert (answered[0], answered[2]) == (expected[0], expected[2]), content_type
        assert answered[1]["content-type"].split(";")[0] == expected[1]["content-type"].split(";")[0]
    assert call(ours + "/ping")[::2] == call(mlflow_serve + "/ping")[::2]
    assert call(ours + "/version")[::2] == call(mlflow_serve + "/version")[::2]


def test_invocations_refusals_have_mlflows_shape(mlflow_serve, open_endpoint):
    for body in (b"{nope", b"[1, 2]", b'{"rows": []}', b'{"inputs": [[1, 2]]}', b"\xff\xfe"):
        expected = call(mlflow_serve + "/invocations", body, {"Content-Type": "application/json"})
        answered = call(base(open_endpoint) + "/invocations", body, {"Content-Type": "application/json"})
        assert answered[0] == expected[0] == 400, body
        ours, theirs = json.loads(answered[2]), json.loads(expected[2])
        assert set(ours) == {"error_code", "message"} <= set(theirs) and ours["message"], body
        # MLflow's codes of a 400: BAD_REQUEST, or INVALID_PARAMETER_VALUE where its schema enforcement refuses
        assert {ours["error_code"], theirs["error_code"]} <= {"BAD_REQUEST", "INVALID_PARAMETER_VALUE"}


def test_mlflows_scoring_client_reads_our_answers(mlflow_serve, open_endpoint, iris):
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    model, X = iris
    theirs = ScoringServerClient("127.0.0.1", mlflow_serve.rsplit(":", 1)[1])
    ours = ScoringServerClient("127.0.0.1", base(open_endpoint).rsplit(":", 1)[1])
    ours.wait_server_ready(timeout=30)
    answer = ours.invoke(X[:4])
    assert answer == theirs.invoke(X[:4])
    assert answer.get_predictions().iloc[:, 0].tolist() == model.predict(X[:4]).tolist()
    # rows without names: MLflow refuses them for a signature with names; they are taken in the signature's order
    assert ours.invoke(X.to_numpy()[:4]) == answer


def test_invocations_keys_split_and_header_routing(endpoint, iris):
    _, X = iris
    body = json.dumps({"inputs": X[:1].to_numpy().tolist()}).encode()
    json_type = {"Content-Type": "application/json"}
    status, _, answer = call(base(endpoint) + "/invocations", body, json_type)
    assert status == 401 and json.loads(answer)["error_code"] == "UNAUTHENTICATED"
    answered = Counter(
        call(base(endpoint) + "/invocations", body, {**json_type, **_key(endpoint)})[1]["mlops-model-deployment"]
        for _ in range(40)
    )
    assert set(answered) == {"sk", "ox"}
    headers = {**json_type, **_key(endpoint), "mlops-model-deployment": "ox"}
    assert call(base(endpoint) + "/invocations", body, headers)[1]["mlops-model-deployment"] == "ox"


# -- mirroring, collection and metrics hold on every route ---------------------------------------------------------
def test_mirroring_collection_and_metrics_on_every_route(ws, iris):
    _, X = iris
    ep = ws.endpoints.create("proto-mirror", auth="none")
    try:
        ep.deploy("blue", "iris:2")
        ep.deploy("shadow", "iris:2")
        ep.set_traffic({"blue": 100})
        ep.set_mirror({"shadow": 50})
        row = X.to_numpy(np.float32)[:1]
        v2 = {"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 4], "data": row.ravel().tolist()}]}
        for _ in range(30):
            assert call(base(ep) + "/v2/models/proto-mirror/infer", json.dumps(v2).encode())[0] == 200
            csv = X[:1].to_csv(index=False).encode()
            assert call(base(ep) + "/invocations", csv, {"Content-Type": "text/csv"})[0] == 200

        def requests_of(deployment: str) -> float:
            text = call(base(ep) + "/metrics")[2].decode()
            marker = f'mlops_requests_total{{deployment="{deployment}"}} '
            return float(text.split(marker)[1].split()[0]) if marker in text else 0.0

        assert eventually(lambda: requests_of("blue") >= 60)
        assert eventually(lambda: requests_of("shadow") >= 10)  # mirrored after the answer
        assert requests_of("shadow") <= 60

        def collected() -> list[dict]:
            files = (ws.root / "collected" / "proto-mirror" / "blue").glob("*.jsonl")
            return [json.loads(line) for f in files for line in f.read_text().splitlines()]

        lines = eventually(lambda: len(collected()) >= 60 and collected())
        # a v2 JSON request is kept as it came (nothing written on the serving path), the others as /score takes
        # them; a monitor reads every one as the row it was
        assert [line["input"] for line in lines if line.get("protocol") == "v2"] == [v2] * 30
        inputs = [line["input"] for line in lines if "protocol" not in line]
        assert inputs == [{"dataframe_split": {"columns": COLUMNS, "data": [X.iloc[0].tolist()]}}] * 30
        assert all(line["output"]["predictions"] == [0] for line in lines)
        always = (datetime.min.replace(tzinfo=timezone.utc), datetime.max.replace(tzinfo=timezone.utc))
        rows = collected_inputs(ws, "proto-mirror", "blue", *always, COLUMNS)
        assert len(rows) == 60 and np.allclose(rows.to_numpy(np.float32), row)
    finally:
        ep.delete()


# -- the packaged image's server ---------------------------------------------------------------------------------
def test_the_serving_entrypoint_speaks_the_protocols(ws, iris, tmp_path):
    model, X = iris
    folder = ws.models.download("iris", 2, tmp_path / "model")
    port = free_port()
    command = [sys.executable, "-m", "jupyter_mlops.deploy.serve", "--model-dir", str(folder), "--name", "iris"]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        env={**os.environ, "MLOPS_SERVE_KEY": "secret"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = tritonclient_http.InferenceServerClient(f"127.0.0.1:{port}")

        def live() -> bool:
            try:
                return client.is_server_ready()
            except Exception:
                return process.poll() is not None

        eventually(live, timeout=60, interval=0.1)
        assert process.poll() is None
        headers = {"Authorization": "Bearer secret"}
        rows = X.to_numpy(np.float32)[:3]
        tensor = tritonclient_http.InferInput("X", list(rows.shape), "FP32")
        tensor.set_data_from_numpy(rows)
        result = client.infer("iris", [tensor], headers=headers)
        assert result.as_numpy("label").tolist() == model.predict(X[:3]).tolist()
        body = json.dumps({"inputs": rows.tolist()}).encode()
        answer = call(f"http://127.0.0.1:{port}/invocations", body, {"Content-Type": "application/json", **headers})
        assert answer[0] == 200 and json.loads(answer[2]) == {"predictions": model.predict(X[:3]).tolist()}
        assert call(f"http://127.0.0.1:{port}/ping")[0] == 200
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_kserve_rest_client():
    pytest.skip(
        "not run: every kserve SDK release requires cloudevents<2 and this package requires cloudevents>=2, so "
        "`pip install kserve` would replace a dependency; tritonclient speaks the same protocol"
    )
