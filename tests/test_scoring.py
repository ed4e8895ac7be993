"""The scoring contract in process: MLflow's input formats, clear 400s, and micro-batching of concurrent requests."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from jupyter_mlops import InvalidInput
from jupyter_mlops.deploy.scoring import PyfuncScorer, load_scorer, mlflow_payload, to_rows


@pytest.fixture(scope="module")
def counting_model(tmp_path_factory) -> Path:
    import mlflow.pyfunc
    import pandas as pd
    from mlflow.models import infer_signature

    class Doubler(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input: pd.DataFrame, params=None):
            import time

            Doubler.calls = getattr(Doubler, "calls", 0) + 1
            if (model_input["x"] < 0).any():
                raise RuntimeError("negative input")
            time.sleep(0.02)  # a fixed cost per call, as pandas schema work is for real models
            return (model_input["x"] * 2).tolist()

    path = tmp_path_factory.mktemp("pyfunc") / "model"
    frame = pd.DataFrame({"x": [1.0]})
    mlflow.pyfunc.save_model(str(path), python_model=Doubler(), signature=infer_signature(frame, [2.0]))
    return path


@pytest.mark.parametrize(
    "payload",
    [
        {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}},
        {"dataframe_records": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]},
        {"inputs": [[1, 2], [3, 4]]},
        {"instances": [[1, 2], [3, 4]]},
    ],
)
def test_mlflow_input_formats(payload):
    fmt, data = mlflow_payload(json.dumps(payload).encode())
    rows, _ = to_rows(fmt, data, ["a", "b"])
    assert rows == [[1, 2], [3, 4]]


def test_columns_are_reordered_and_wrong_ones_named():
    rows, _ = to_rows("dataframe_split", {"columns": ["b", "a"], "data": [[2, 1]]}, ["a", "b"])
    assert rows == [[1, 2]]
    with pytest.raises(InvalidInput, match=r"unknown \['c'\], missing \['b'\]"):
        to_rows("dataframe_split", {"columns": ["a", "c"], "data": [[1, 2]]}, ["a", "b"])


def test_concurrent_requests_are_combined_into_fewer_predict_calls(counting_model):
    scorer = load_scorer(counting_model)
    assert isinstance(scorer, PyfuncScorer)
    model_class = type(scorer.model.unwrap_python_model())
    model_class.calls = 0
    results: dict[int, object] = {}

    def request(i: int) -> None:
        results[i] = scorer.score(json.dumps({"dataframe_records": [{"x": float(i)}]}).encode())

    threads = [threading.Thread(target=request, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: {"predictions": [2.0 * i]} for i in range(40)}
    assert model_class.calls < 40  # combined


def test_a_failing_request_does_not_fail_the_others_in_its_batch(counting_model):
    scorer = load_scorer(counting_model)
    outcomes: dict[int, object] = {}

    def request(i: int) -> None:
        try:
            outcomes[i] = scorer.score(json.dumps({"inputs": [[-1.0 if i == 3 else float(i)]]}).encode())
        except Exception as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=request, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert isinstance(outcomes[3], RuntimeError)
    assert all(outcomes[i] == {"predictions": [2.0 * i]} for i in range(8) if i != 3)


@pytest.mark.parametrize(
    "split",
    [
        {"data": [{}, False], "columns": [{}]},  # found by the property-based test: was a 500
        {"data": [[1, 2]], "columns": ["a"]},
        {"data": [[1, 2]], "columns": "ab"},
    ],
)
def test_columns_that_do_not_fit_the_rows_are_bad_input(split):
    with pytest.raises(InvalidInput, match="columns must list"):
        to_rows("dataframe_split", split, None)
