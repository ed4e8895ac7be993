"""The scoring contract in process: MLflow's input formats, clear 400s, and micro-batching of concurrent requests."""

from __future__ import annotations

import json
import re
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


# -- ONNX conversions serve their source model's input contract ----------------------------------------------------
@pytest.fixture(scope="module")
def contract_ws(tmp_path_factory):
    from jupyter_mlops import Workspace

    return Workspace(tmp_path_factory.mktemp("contract") / "ws")


@pytest.fixture(scope="module")
def iris_frame():
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True, as_frame=True)


def _converted_scorer(ws, model, name: str, sample, tmp_path):
    """(scorer of the conversion, conversion) of ``model``, registered as ``name`` and converted by
    convert_to_onnx; the scorer is the one the endpoints load."""
    from jupyter_mlops.deploy.onnx import convert_to_onnx
    from jupyter_mlops.deploy.scoring import OnnxScorer

    ws.models.register(model, name)
    conversion = convert_to_onnx(ws, f"{name}:1", sample)
    scorer = load_scorer(ws.models.download(name, conversion.version.version, tmp_path / name))
    assert isinstance(scorer, OnnxScorer)
    return scorer, conversion


def _body(row: list, column: int | None = None, literal: str = "") -> bytes:
    """``{"inputs": [row]}``, with the JSON ``literal`` (``NaN``, ``1e400``, ``null``...) in ``column``."""
    if column is None:
        return json.dumps({"inputs": [row]}).encode()
    marked = [*row[:column], "@", *row[column + 1 :]]
    return json.dumps({"inputs": [marked]}).replace('"@"', literal).encode()


def test_an_onnx_conversion_refuses_what_its_source_refuses_naming_the_column(contract_ws, iris_frame, tmp_path):
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    # Given the ONNX conversion of a LogisticRegression, which refuses missing and infinite values
    X, y = iris_frame
    model = LogisticRegression(max_iter=300).fit(X, y)
    scorer, conversion = _converted_scorer(contract_ws, model, "logistic", X[:50], tmp_path)
    assert conversion.version.tags["onnx_missing_values"] == "refused in every column: the source model refuses it"
    assert conversion.missing_values == conversion.version.tags["onnx_missing_values"]
    assert conversion.infinite_values.startswith("refused in every column")
    row = X.iloc[0].tolist()
    assert scorer.score(_body(row)) == {"predictions": model.predict(X[:1]).tolist()}
    # When a numeric column holds NaN, an infinity, a number no float holds, null or a boolean
    for literal, what in [
        ("NaN", "missing value"),
        ("Infinity", "infinite value"),
        ("-Infinity", "infinite value"),
        ("1e400", "infinite value"),
        ("1e300", "infinite value"),  # a float64, beyond the model's 32-bit input
        ("null", "missing value"),
        ("true", "boolean"),
    ]:
        # Then it is a 400 naming the column (as scikit-learn refuses it on the source model)
        with pytest.raises(InvalidInput, match=rf"Column 'sepal width \(cm\)' holds an? {what}"):
            scorer.score(_body(row, 1, literal))
        if literal != "true":  # scikit-learn takes a boolean as 1.0; JSON's true is refused as a number here
            source_row = X[:1].copy()
            source_row.iloc[0, 1] = np.nan if literal in ("NaN", "null") else np.inf
            with pytest.raises(ValueError, match=r"NaN|infinity"):
                model.predict(source_row)
    # and in a table sent as dataframe_split, named by its own column
    split = {"dataframe_split": {"columns": list(X.columns), "data": [[*row[:3], None]]}}
    with pytest.raises(InvalidInput, match=r"Column 'petal width \(cm\)' holds a missing value"):
        scorer.score(json.dumps(split).encode())


def test_a_conversion_of_a_model_that_takes_missing_values_keeps_taking_them(contract_ws, iris_frame, tmp_path):
    import numpy as np
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    # Given a model that imputes missing values (HistGradientBoosting takes them too, but skl2onnx 1.20 cannot
    # convert it under scikit-learn 1.9)
    X, y = iris_frame
    model = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=300)).fit(X, y)
    scorer, conversion = _converted_scorer(contract_ws, model, "imputing", X, tmp_path)
    assert conversion.missing_values == "accepted"
    assert conversion.infinite_values.startswith("refused")  # the imputer refuses infinities
    # When a row holds NaN or null, its conversion scores it as the source model does
    for index in (0, 60, 120):
        for column in range(4):
            source_row = X.iloc[index : index + 1].copy()
            source_row.iloc[0, column] = np.nan
            expected = {"predictions": model.predict(source_row).tolist()}
            for literal in ("NaN", "null"):
                assert scorer.score(_body(X.iloc[index].tolist(), column, literal)) == expected
    with pytest.raises(InvalidInput, match="infinite value"):
        scorer.score(_body([1.0, 1.0, 1.0, 1.0], 1, "Infinity"))


def test_missing_values_a_conversion_would_score_otherwise_are_refused(contract_ws, iris_frame, tmp_path):
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier

    # Given a forest: scikit-learn routes missing values down its trees, ONNX's tree ensemble not always alike
    X, y = iris_frame
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    scorer, conversion = _converted_scorer(contract_ws, model, "forest", X[:50], tmp_path)
    refused = scorer.contract.refused["missing"]
    assert conversion.version.tags["onnx_missing_values"] == conversion.missing_values
    # Then a column refuses missing values exactly when the conversion answers otherwise on the probed rows, and
    # where it agrees, a missing value is scored as the source model scores it
    for column, name in enumerate(X.columns):
        probe = X.iloc[:20].copy()
        probe.iloc[:, column] = np.nan
        rows = [[None if c == column else v for c, v in enumerate(r)] for r in X.iloc[:20].values.tolist()]
        if column in refused:
            assert "onnx=False" in refused[column]
            with pytest.raises(InvalidInput, match=rf"Column '{re.escape(name)}' holds a missing value.*onnx=False"):
                scorer.score(json.dumps({"inputs": rows}).encode())
        else:
            assert scorer.score(json.dumps({"inputs": rows}).encode())["predictions"] == model.predict(probe).tolist()


def test_a_pickled_model_is_given_rows_as_it_was_fitted_without_warnings(contract_ws, iris_frame, tmp_path):
    import warnings

    from sklearn.linear_model import LogisticRegression

    X, y = iris_frame
    named = contract_ws.models.register(LogisticRegression(max_iter=300).fit(X, y), "named")
    unnamed = contract_ws.models.register(LogisticRegression(max_iter=300).fit(X.to_numpy(), y), "unnamed")
    rows = X.iloc[:2].values.tolist()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for record in (named, unnamed):
            scorer = load_scorer(contract_ws.models.download(record.name, record.version, tmp_path / record.name))
            assert isinstance(scorer, PyfuncScorer)
            for payload in ({"inputs": rows}, {"dataframe_split": {"columns": list(X.columns), "data": rows}}):
                assert scorer.score(json.dumps(payload).encode()) == {"predictions": [0, 0]}
    assert not [w for w in caught if "feature names" in str(w.message)], [str(w.message) for w in caught]


def test_a_payload_a_protocol_parsed_is_scored_and_refused_as_its_body(contract_ws, iris_frame, tmp_path):
    from sklearn.linear_model import LogisticRegression

    from jupyter_mlops.deploy.protocols.tensors import DECODER

    # Given the ONNX conversion of a model (with its input contract) and the pickled model itself
    X, y = iris_frame
    model = LogisticRegression(max_iter=300).fit(X, y)
    onnx, _ = _converted_scorer(contract_ws, model, "parsed", X[:50], tmp_path)
    pyfunc = load_scorer(contract_ws.models.download("parsed", 1, tmp_path / "pickled"), prefer_onnx=False)
    row = X.iloc[0].tolist()
    bodies = [_body(row), *(_body(row, 2, literal) for literal in ("NaN", "1e400", "null", "true", '"x"', "[1]"))]
    bodies += [
        json.dumps({"dataframe_split": {"columns": list(X.columns), "data": [row, row]}}).encode(),
        json.dumps({"dataframe_records": [dict(zip(X.columns, row, strict=True))]}).encode(),
        json.dumps({"inputs": [row], "instances": [row]}).encode(),
        json.dumps({"inputs": [row[:3]]}).encode(),
        b"[1, 2]",
    ]
    for scorer in (onnx, pyfunc):
        for body in bodies:
            # When a protocol hands over the parsed payload (floats as numbers, or as their text where taken)
            payloads = [json.loads(body)] + ([DECODER.decode(body.decode())] if scorer.numbers_as_text else [])
            try:
                expected: object = scorer.score(body)
            except InvalidInput as exc:
                expected = exc.message
            for payload in payloads:
                # Then it answers as it answers the body, and refuses it with the same message
                try:
                    got: object = scorer.score_payload(payload, b"true" in body)
                except InvalidInput as exc:
                    got = exc.message
                assert got == expected, (type(scorer).__name__, body)
