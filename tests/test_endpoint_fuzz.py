"""Property-based: no client input to /score gets a 5xx (arbitrary bodies, headers, methods and content types; JSON
nested past the parser's depth, integers past what Python converts or any float holds, NaN, infinities, nulls and
booleans where numbers go) and none kills the router. The deployments: the pickled model, an ONNX file registered
as it is, and the model's conversion by convert_to_onnx (which enforces its source's input contract).

The same property holds on the other protocols' scoring routes: ``POST /invocations`` (MLflow's JSON formats,
column-oriented ``inputs`` and row objects, CSV tables, Parquet, any Content-Type) and
``POST /v2/models/{name}/infer`` (v2 bodies with any datatypes, shapes, data, binary sizes and outputs asked for),
each refusal in its protocol's shape."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from jupyter_mlops import Workspace

JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
MLFLOW_SHAPED = st.fixed_dictionaries(
    {},
    optional={
        "inputs": JSON,
        "instances": JSON,
        "dataframe_split": st.fixed_dictionaries({}, optional={"columns": JSON, "data": JSON}),
        "dataframe_records": JSON,
    },
)
VALUE = st.one_of(  # where the model takes a number
    st.floats(),  # NaN and infinities included: json.dumps writes them as NaN, Infinity, -Infinity
    st.integers(),
    st.integers(min_value=10**38, max_value=10**400),  # past float32, past float64
    st.booleans(),
    st.none(),
    st.text(max_size=5),
    st.sampled_from(["5.1", "1e400", "NaN"]),
)
ROWS = st.lists(st.lists(VALUE, min_size=4, max_size=4), min_size=1, max_size=3)
COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
NESTED = st.tuples(st.integers(1, 20_000), st.sampled_from(["[", '{"a":'])).map(
    lambda depth_open: depth_open[1] * depth_open[0] + "1" + ("]" if depth_open[1] == "[" else "}") * depth_open[0]
)
BODIES = st.one_of(
    st.binary(max_size=300),
    JSON.map(lambda v: json.dumps(v).encode()),
    MLFLOW_SHAPED.map(lambda v: json.dumps(v).encode()),
    ROWS.map(lambda rows: json.dumps({"inputs": rows}).encode()),
    ROWS.map(lambda rows: json.dumps({"dataframe_split": {"columns": COLUMNS, "data": rows}}).encode()),
    NESTED.map(str.encode),
    st.integers(4_000, 6_000).map(lambda digits: b'{"inputs": [[' + b"9" * digits + b", 1, 2, 3]]}"),
)
CONTENT_TYPES = st.one_of(
    st.sampled_from(
        ["application/json", "application/json; format=pandas-split", "text/csv", "text/plain", "application/xml"]
    ),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
)
HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "Content-Type": CONTENT_TYPES,
        "mlops-model-deployment": st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
        "Authorization": st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
        "X-Anything": st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
    },
)
METHODS = st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE", "PATCH"])
CLIENT_ERRORS = (400, 404, 405, 413, 415)
DEPLOYMENTS = ("sk", "ox", "cv")

# -- /invocations: MLflow's JSON formats, column-oriented inputs, row objects, CSV and Parquet tables ---------------
COLUMN_NAMES = st.sampled_from(COLUMNS) | st.text(max_size=8)
MLFLOW_JSON = st.one_of(
    BODIES,
    st.dictionaries(COLUMN_NAMES, st.lists(VALUE, max_size=3) | VALUE, max_size=5).map(lambda c: {"inputs": c}),
    st.lists(st.dictionaries(COLUMN_NAMES, VALUE, max_size=5), max_size=3).flatmap(
        lambda rows: st.sampled_from([{"instances": rows}, {"inputs": rows}, {"instances": rows, "inputs": rows}])
    ),
    ROWS.map(lambda rows: {"inputs": rows, "params": {"k": 1}}),
).map(lambda v: v if isinstance(v, bytes) else json.dumps(v).encode())
CELL = st.one_of(
    VALUE.map(str),
    st.sampled_from(["", "NA", "null", "True", "false", "inf", "-Infinity", ".5", "1e5", '"a,b"', '"', "\\"]),
    st.integers(4_000, 5_000).map(lambda digits: "9" * digits),
    st.text(max_size=6),
)
CSV_LINE = st.lists(CELL, min_size=0, max_size=5).map(",".join)
CSV_BODY = st.one_of(
    st.lists(st.lists(CELL, min_size=4, max_size=4).map(",".join), min_size=1, max_size=3).map(
        lambda rows: "\n".join([",".join(COLUMNS), *rows])  # the model's columns, a value in each
    ),
    st.lists(CSV_LINE, max_size=4).map(lambda rows: "\n".join([",".join(COLUMNS), *rows])),
    st.lists(CSV_LINE, max_size=4).map("\n".join),
).map(str.encode) | st.binary(max_size=100)
INVOCATIONS_TYPES = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "text/csv",
            "text/csv; charset=utf-8",
            "application/json; charset=latin-1",
            "application/json; format=pandas-split",
            "application/vnd.apache.parquet",
        ]
    ),
    CONTENT_TYPES,
)


def _parquet(rows: list[list]) -> bytes:
    import io

    import pandas as pd

    buffer = io.BytesIO()
    try:
        pd.DataFrame(rows, columns=COLUMNS).astype(str).to_parquet(buffer)
    except Exception:  # what pandas cannot store: the body is then not Parquet
        return b"PAR1"
    return buffer.getvalue()


INVOCATIONS = st.one_of(
    st.tuples(MLFLOW_JSON, st.just("application/json")),
    st.tuples(CSV_BODY, st.just("text/csv")),
    st.tuples(ROWS.map(_parquet) | st.binary(max_size=50), st.just("application/vnd.apache.parquet")),
    st.tuples(MLFLOW_JSON | CSV_BODY, INVOCATIONS_TYPES),
    st.tuples(MLFLOW_JSON | CSV_BODY, st.none()),
)

# -- /v2/models/{name}/infer: tensors of any datatype, shape and data ---------------------------------------------
DATATYPES = st.sampled_from(
    ["FP32", "FP64", "FP16", "INT64", "INT32", "INT8", "UINT8", "UINT64", "BOOL", "BYTES", "fp32", "STRING", ""]
)
SHAPES = st.lists(st.integers(-1, 5), max_size=3) | st.sampled_from([[1, 4], [2, 4], [4], [1], [3, 1]])
DATA = st.one_of(
    st.lists(VALUE, max_size=10),
    st.lists(st.lists(VALUE, min_size=4, max_size=4), max_size=3),
    JSON,
)
TENSOR = st.fixed_dictionaries(
    {"name": st.sampled_from(["X", "input", *COLUMNS]) | st.text(max_size=5), "datatype": DATATYPES, "shape": SHAPES},
    optional={
        "data": DATA,
        "parameters": st.fixed_dictionaries({}, optional={"binary_data_size": st.integers(-2, 40) | JSON}) | JSON,
    },
)
COLUMN_TENSORS = st.lists(VALUE, min_size=1, max_size=3).flatmap(  # one tensor per column, the sklearn way
    lambda values: st.just(
        [{"name": name, "datatype": "FP64", "shape": [len(values)], "data": values} for name in COLUMNS]
    )
)
ROW_TENSOR = st.tuples(ROWS, DATATYPES).map(  # one tensor of rows, of any datatype, its values of any kind
    lambda rows_type: [
        {
            "name": "X",
            "datatype": rows_type[1],
            "shape": [len(rows_type[0]), 4],
            "data": [v for row in rows_type[0] for v in row],
        }
    ]
)
V2_REQUEST = st.fixed_dictionaries(
    {"inputs": st.lists(TENSOR, max_size=4) | COLUMN_TENSORS | ROW_TENSOR | ROW_TENSOR | JSON},
    optional={
        "id": JSON,
        "parameters": st.fixed_dictionaries({}, optional={"binary_data_output": JSON}) | JSON,
        "outputs": st.lists(
            st.fixed_dictionaries(
                {"name": st.sampled_from(["label", "predictions", "probabilities"]) | st.text(max_size=5)},
                optional={"parameters": st.fixed_dictionaries({"binary_data": st.booleans()})},
            ),
            max_size=2,
        )
        | JSON,
    },
)
V2_BODY = st.one_of(
    st.tuples(V2_REQUEST.map(lambda v: json.dumps(v).encode()), st.none()),
    st.tuples(  # the binary extension: the JSON header, its length, then bytes
        V2_REQUEST.map(lambda v: json.dumps(v).encode()), st.binary(max_size=64), st.integers(-3, 3)
    ).map(lambda h: (h[0] + h[1], str(len(h[0]) + h[2]))),
    st.tuples(BODIES, st.none() | st.text(alphabet="0123456789x-", max_size=5)),
)
V2_MODELS = ("fuzz", *(f"fuzz/{name}" for name in DEPLOYMENTS), "fuzz/versions/1", "fuzz/cv/versions/3", "other")


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from jupyter_mlops.deploy.onnx import convert_to_onnx

    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=300).fit(X, y)
    ws = Workspace(tmp_path_factory.mktemp("fuzz") / "ws")
    ws.models.register(model, "iris")
    ws.models.register(to_onnx(model, X.to_numpy(np.float32)[:1], options={"zipmap": False}), "iris")
    convert_to_onnx(ws, "iris:1", X[:50])  # version 3, with its source's input contract
    ep = ws.endpoints.create("fuzz", auth="none")
    ep.deploy("sk", "iris:1", onnx=False)
    ep.deploy("ox", "iris:2")
    ep.deploy("cv", "iris:1")
    ep.set_traffic({"sk": 40, "ox": 30, "cv": 30})
    yield ep
    ep.delete()


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI never meets a case no one has seen
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=BODIES, headers=HEADERS, method=METHODS)
@example(body=b'{"dataframe_split": {"data": [{}, false], "columns": [{}]}}', headers={}, method="POST")
@example(body=b"[" * 10_000 + b"]" * 10_000, headers={}, method="POST")
@example(body=b'{"inputs": [[NaN, Infinity, 1e400, null]]}', headers={}, method="POST")
@example(body=b'{"inputs": [[true, false, 1, 2]]}', headers={"Content-Type": "text/csv"}, method="POST")
def test_no_5xx_for_client_input(endpoint, body, headers, method):
    # the generated headers, then each deployment by name (the traffic split alone would pick one at random)
    for extra in ({}, *({"mlops-model-deployment": name} for name in DEPLOYMENTS)):
        request = urllib.request.Request(endpoint.scoring_uri, data=body, headers={**headers, **extra}, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
            assert "message" in json.loads(exc.read())  # every refusal in JSON, a wrong method's too
        assert status == 200 or status in CLIENT_ERRORS, (status, body[:200], headers, extra, method)


def _call(url: str, body: bytes, headers: dict[str, str], method: str = "POST") -> tuple[int, str, bytes]:
    """(status, Content-Type, body) of one request."""
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers.get("content-type", ""), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("content-type", ""), exc.read()


BUDGET = settings(
    max_examples=100,  # each example is sent to every deployment: a few seconds per protocol
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@BUDGET
@given(sent=INVOCATIONS, method=METHODS)
@example(sent=(b"a,b\n" + b"9" * 4_500 + b",1", "text/csv"), method="POST")
@example(sent=(b'{"inputs": {"a": [1, 2], "b": [1]}}', "application/json"), method="POST")
@example(sent=(b'{"instances": [{"a": true}], "params": {}}', None), method="POST")
def test_no_5xx_for_client_input_on_invocations(endpoint, sent, method):
    body, content_type = sent
    url = endpoint.scoring_uri.rsplit("/", 1)[0] + "/invocations"
    for extra in ({}, *({"mlops-model-deployment": name} for name in DEPLOYMENTS)):
        headers = {**extra, **({"Content-Type": content_type} if content_type is not None else {})}
        status, answered_type, answer = _call(url, body, headers, method)
        assert status == 200 or status in CLIENT_ERRORS, (status, answer[:300], body[:200], headers, method)
        if status == 415:  # as MLflow: in plain text
            assert answered_type.startswith("text/plain"), answered_type
        elif status != 200:  # MLflow's error shape
            refusal = json.loads(answer)
            assert refusal["error_code"] and refusal["message"], refusal


@BUDGET
@given(sent=V2_BODY, method=st.sampled_from(["POST", "POST", "POST", "GET", "PUT"]))
@example(
    sent=(b'{"inputs": [{"name": "X", "datatype": "BOOL", "shape": [1, 4], "data": [true, false, true, 1]}]}', None),
    method="POST",
)
@example(
    sent=(
        b'{"inputs": [{"name": "X", "datatype": "BOOL", "shape": [1, 4], "data": [true, false, true, false]}]}',
        None,
    ),
    method="POST",
)
@example(
    sent=(b'{"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 1e400]}]}', None),
    method="POST",
)
@example(
    sent=(b'{"inputs": [{"name": "X", "datatype": "BYTES", "shape": [1, 4], "data": ["1", "a", "", "2"]}]}', None),
    method="POST",
)
def test_no_5xx_for_client_input_on_v2_infer(endpoint, sent, method):
    body, header_length = sent
    base = endpoint.scoring_uri.rsplit("/", 1)[0]
    headers = {"Content-Type": "application/json"}
    if header_length is not None:
        headers["Inference-Header-Content-Length"] = header_length
    for model in V2_MODELS:
        status, _, answer = _call(f"{base}/v2/models/{model}/infer", body, headers, method)
        assert status == 200 or status in CLIENT_ERRORS, (status, answer[:300], body[:200], model, method)
        if status != 200:  # v2's error shape
            assert json.loads(answer)["error"], answer[:300]


def test_router_still_alive_after_the_fuzzing(endpoint):
    assert endpoint.invoke({"inputs": [[5.1, 3.5, 1.4, 0.2]]}) == {"predictions": [0]}
