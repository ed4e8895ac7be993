"""Property-based: arbitrary bodies and headers sent to /score never get a 500 and never kill the router."""

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
BODIES = st.one_of(
    st.binary(max_size=300),
    JSON.map(lambda v: json.dumps(v).encode()),
    MLFLOW_SHAPED.map(lambda v: json.dumps(v).encode()),
)
HEADERS = st.dictionaries(
    st.sampled_from(["Content-Type", "mlops-model-deployment", "Authorization", "X-Anything"]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
    max_size=3,
)


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(X, y)
    ws = Workspace(tmp_path_factory.mktemp("fuzz") / "ws")
    ws.models.register(model, "iris")
    ws.models.register(to_onnx(model, X[:1].astype(np.float32), options={"zipmap": False}), "iris")
    ep = ws.endpoints.create("fuzz", auth="none")
    ep.deploy("sk", "iris:1", onnx=False)
    ep.deploy("ox", "iris:2")
    ep.set_traffic({"sk": 50, "ox": 50})
    yield ep
    ep.delete()


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI never meets a case no one has seen
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=BODIES, headers=HEADERS)
@example(body=b'{"dataframe_split": {"data": [{}, false], "columns": [{}]}}', headers={})
def test_no_500_for_bad_input(endpoint, body, headers):
    # the generated headers, then each deployment by name (the traffic split alone would pick one at random)
    for extra in ({}, {"mlops-model-deployment": "sk"}, {"mlops-model-deployment": "ox"}):
        request = urllib.request.Request(endpoint.scoring_uri, data=body, headers={**headers, **extra}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
            assert "message" in json.loads(exc.read())
        assert status in (200, 400, 404, 413), (status, body, headers, extra)


def test_router_still_alive_after_the_fuzzing(endpoint):
    assert endpoint.invoke({"inputs": [[5.1, 3.5, 1.4, 0.2]]}) == {"predictions": [0]}
