"""Property-based: no client input to /score gets a 5xx (arbitrary bodies, headers, methods and content types; JSON
nested past the parser's depth, integers past what Python converts or any float holds, NaN, infinities, nulls and
booleans where numbers go) and none kills the router. The deployments: the pickled model, an ONNX file registered
as it is, and the model's conversion by convert_to_onnx (which enforces its source's input contract)."""

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
    for extra in ({}, *({"mlops-model-deployment": name} for name in ("sk", "ox", "cv"))):
        request = urllib.request.Request(endpoint.scoring_uri, data=body, headers={**headers, **extra}, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
            assert "message" in json.loads(exc.read())  # every refusal in JSON, a wrong method's too
        assert status == 200 or status in CLIENT_ERRORS, (status, body[:200], headers, extra, method)


def test_router_still_alive_after_the_fuzzing(endpoint):
    assert endpoint.invoke({"inputs": [[5.1, 3.5, 1.4, 0.2]]}) == {"predictions": [0]}
