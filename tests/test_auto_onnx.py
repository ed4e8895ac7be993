"""Automatic ONNX: a scikit-learn version with a sample is served by its proven conversion from the first deploy
(converted at registration); one without a conversion is converted at its first deploy and switched in place while
requests keep flowing; without a sample, or when the proof fails, the pickled model serves and the deployment's
record says why."""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_mlops import Workspace
from tests.waiting import eventually


@pytest.fixture(scope="module")
def data():
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True, as_frame=True)


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Iterator[Workspace]:
    os.environ["MLOPS_USER"] = "tester"
    workspace = Workspace(tmp_path_factory.mktemp("auto-onnx") / "ws")
    yield workspace
    for info in workspace.endpoints.list():
        workspace.endpoints.delete(info.name)


def _save_with_input_example(model, example, path: Path) -> Path:
    import mlflow.sklearn

    from jupyter_mlops._mlflow import quiet

    with quiet("mlflow.sklearn", "mlflow.models"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # MLflow's hint on integer outputs: the labels are integers
        mlflow.sklearn.save_model(model, str(path), input_example=example, serialization_format="cloudpickle")
    return path


def _serving(ep, deployment: str):
    return next(d for d in ep.info.deployments if d.name == deployment)


def _converted(ep, deployment: str):
    """The deployment once its converter is done and every worker applied what it did (serving ONNX, or the
    pickled model with the reason)."""

    def done():
        served = _serving(ep, deployment)
        return served if not served.serving.startswith("pyfunc: converting") and served.status == "active" else None

    served = eventually(done, timeout=180, interval=0.2)
    assert served, _serving(ep, deployment)
    return served


def _post(url: str, payload: object) -> tuple[int, object]:
    request = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())["message"]
    except OSError as exc:
        return 0, repr(exc)


def test_a_forest_registered_with_an_input_example_is_served_as_onnx_from_its_first_deploy(ws, data, tmp_path):
    from sklearn.ensemble import RandomForestClassifier

    # Given a forest saved with an MLflow input example
    X, y = data
    forest = RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0).fit(X, y)
    # When it is registered, then deployed as it is (no explicit conversion)
    source = ws.models.register(_save_with_input_example(forest, X[:5], tmp_path / "forest"), "forest")
    ep = ws.endpoints.create("forest", auth="none")
    try:
        deployed = ep.deploy("blue", "forest:1")
        ep.set_traffic({"blue": 100})
        # Then registering it registered its conversion too, proven on the input example (kept beside it)
        conversion = ws.models.get("forest", 2)
        assert source.version == 1 and conversion.tags["converted_from"] == "forest:1"
        assert conversion.tags["onnx_parity_rows"] == "5"
        assert "parity_sample.parquet" in os.listdir(ws.models.download("forest", 2, tmp_path / "conversion"))
        # and the deployment serves it from the first request; its record says so
        assert (deployed.model, deployed.requested) == ("forest:2", "forest:1")
        assert deployed.serving == "onnx: forest:2, the conversion of forest:1, parity on 5 rows"
        rows = X.iloc[[0, 70, 140]]
        assert ep.invoke({"inputs": rows.values.tolist()}) == {"predictions": forest.predict(rows).tolist()}
    finally:
        ep.delete()


def test_a_version_without_a_conversion_is_switched_to_one_at_its_first_deploy_without_a_failed_request(ws, data):
    from sklearn.linear_model import LogisticRegression

    # Given a model trained in a job on a registered dataset (its training data, target included), and registered
    # there without a sample: nothing is converted at registration
    X, y = data
    ws.datasets.register("iris-train", X.assign(target=y))
    with ws.job(experiment="auto-onnx", autolog=False) as job:
        frame = ws.datasets.load("iris-train")
        model = LogisticRegression(max_iter=300).fit(frame[list(X.columns)], frame["target"])
        job.register_model(model, "trained")
    assert [v.version for v in ws.models.list("name=trained")] == [1]
    ep = ws.endpoints.create("trained", auth="none")
    try:
        # When it is deployed as it is, under a steady load
        deployed = ep.deploy("blue", "trained:1")
        ep.set_traffic({"blue": 100})
        assert deployed.model == "trained:1"
        assert deployed.serving == "pyfunc: converting to ONNX, parity on the dataset 'iris-train:1' its job logged"
        rows = X.iloc[[0, 70, 140]].values.tolist()
        expected = {"predictions": model.predict(X.iloc[[0, 70, 140]]).tolist()}
        answers: list[tuple[int, object]] = []
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                answers.append(_post(ep.scoring_uri, {"inputs": rows}))

        sender = threading.Thread(target=load)
        sender.start()
        try:
            served = _converted(ep, "blue")
            count = len(answers)
            eventually(lambda: len(answers) > count + 20)  # and on, after the switch
        finally:
            stop.set()
            sender.join()
        # Then it ends up serving its conversion (proven on the dataset's features, not its target), switched
        # in place without a failed request
        assert (served.model, served.requested) == ("trained:2", "trained:1")
        assert served.serving == "onnx: trained:2, the conversion of trained:1, parity on 150 rows"
        assert len(answers) > 20 and all(answer == (200, expected) for answer in answers), {
            str(a) for a in answers if a != (200, expected)
        }
        assert "blue now serves trained:2" in ep.logs("blue")
        # and the conversion serves its source's input contract
        status, message = _post(ep.scoring_uri, {"inputs": [[1.0, None, 1.0, 1.0]]})
        assert status == 400 and "Column 'sepal width (cm)' holds a missing value" in message
        # Another deploy of the version serves the conversion straight away
        assert ep.deploy("green", "trained:1").model == "trained:2"
    finally:
        ep.delete()


def test_without_a_sample_the_pickled_model_serves_and_the_record_says_why(ws, data):
    from sklearn.linear_model import LogisticRegression

    # Given a model registered from the estimator itself, outside a job: no sample of any kind
    X, y = data
    model = LogisticRegression(max_iter=300).fit(X, y)
    ws.models.register(model, "plain")
    ep = ws.endpoints.create("plain", auth="none")
    try:
        # When it is deployed, with or without ONNX
        plain = ep.deploy("blue", "plain:1")
        declined = ep.deploy("green", "plain:1", onnx=False)
        # Then it serves the pickled model, and the record says why
        assert plain.model == "plain:1" and plain.serving.startswith("pyfunc: no sample to prove an ONNX conversion")
        assert "sample=" in plain.serving
        assert declined.model == "plain:1" and declined.serving == "pyfunc: onnx=False"
        assert len(ws.models.list("name=plain")) == 1  # nothing converted
        # When a sample is given to deploy, it is converted on it and switched to
        sampled = ep.deploy("blue", "plain:1", sample=X.to_numpy()[:40])
        assert sampled.serving == "pyfunc: converting to ONNX, parity on the sample given to deploy (40 rows)"
        served = _converted(ep, "blue")
        assert served.model == "plain:2" and served.serving.endswith("parity on 40 rows")
        rows = X.iloc[:2].values.tolist()
        assert ep.invoke({"inputs": rows}, deployment="blue") == {"predictions": model.predict(X[:2]).tolist()}
        assert _serving(ep, "green").model == "plain:1"  # opted out: still the pickled model
    finally:
        ep.delete()


def test_when_the_conversion_fails_its_proof_the_pickled_model_serves_and_the_record_says_why(ws, data, tmp_path):
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    # Given a pipeline skl2onnx cannot convert (a custom function), registered with an input example
    X, y = data
    model = make_pipeline(FunctionTransformer(np.log1p), LogisticRegression(max_iter=300)).fit(X, y)
    ws.models.register(_save_with_input_example(model, X[:5], tmp_path / "custom"), "custom")
    # Then registration stands without a conversion, and the version says why
    refused = ws.models.get("custom", 1).tags["onnx_refused"]
    assert refused.startswith("the ONNX conversion was refused: skl2onnx cannot convert Pipeline")
    assert len(ws.models.list("name=custom")) == 1
    ep = ws.endpoints.create("custom", auth="none")
    try:
        # When it is deployed as it is, it serves the pickled model, and its record says why
        served = ep.deploy("blue", "custom:1")
        assert served.model == "custom:1" and served.serving == f"pyfunc: {refused}"
        rows = X.iloc[:2].values.tolist()
        assert ep.invoke({"inputs": rows}, deployment="blue") == {"predictions": model.predict(X[:2]).tolist()}
    finally:
        ep.delete()


def test_register_with_a_sample_converts_an_estimator(ws, data):
    from sklearn.tree import DecisionTreeClassifier

    X, y = data
    source = ws.models.register(DecisionTreeClassifier(random_state=0).fit(X, y), "tree", sample=X.iloc[::10])
    conversion = ws.models.get("tree", source.version + 1)
    assert conversion.tags["converted_from"] == "tree:1" and conversion.tags["onnx_parity_rows"] == "15"


def test_cli_register_with_a_sample_file_converts_a_saved_model(ws, data, tmp_path):
    import subprocess
    import sys

    import mlflow.sklearn
    from sklearn.tree import DecisionTreeClassifier

    from jupyter_mlops._mlflow import quiet

    X, y = data
    folder = tmp_path / "saved"
    with quiet():
        tree = DecisionTreeClassifier(random_state=0).fit(X, y)
        mlflow.sklearn.save_model(tree, str(folder), serialization_format="cloudpickle")
    X.iloc[::5].to_csv(tmp_path / "rows.csv", index=False)
    jupyter = [str(Path(sys.executable).parent / "jupyter"), "mlops", "--workspace", str(ws.root), "models"]

    # A sample that is not there is refused before anything is registered
    missing = subprocess.run([*jupyter, "register", "saved", str(folder), "--sample", "nope.csv"], capture_output=True)
    assert missing.returncode != 0 and b"nope.csv does not exist" in missing.stderr
    assert not ws.models.list("name=saved")

    done = subprocess.run(
        [*jupyter, "register", "saved", str(folder), "--sample", str(tmp_path / "rows.csv"), "--json"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version"] == 1
    conversion = ws.models.get("saved", 2)
    assert conversion.tags["converted_from"] == "saved:1" and conversion.tags["onnx_parity_rows"] == "30"
