"""Explanations of a real registered model, stored with its version."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jupyter_mlops import InvalidInput, Workspace
from jupyter_mlops.explain import SHAP_ROWS, explain


@pytest.fixture
def signal_data() -> tuple[pd.DataFrame, pd.Series]:
    """One feature decides the label, two are noise."""
    rng = np.random.default_rng(0)
    data = pd.DataFrame(rng.normal(size=(300, 3)), columns=["signal", "noise1", "noise2"])
    return data, (data["signal"] > 0).astype(int)


def _artifacts(ws: Workspace, run_id: str, path: str) -> set[str]:
    return {a.path.rsplit("/", 1)[-1] for a in ws.client.list_artifacts(run_id, path)}


def test_permutation_importance_finds_the_feature_that_matters(local_workspace: Workspace, signal_data):
    from sklearn.ensemble import RandomForestClassifier

    data, labels = signal_data
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(data, labels)
    version = local_workspace.models.register(model, "explained")
    result = explain(local_workspace, f"explained:{version.version}", data.head(150), shap=False)
    assert result.importances.iloc[0]["feature"] == "signal"
    assert result.importances.iloc[0]["importance"] > 5 * max(result.importances.iloc[1:]["importance"].max(), 0.01)
    assert result.shap is None and result.note is None
    with_labels = explain(local_workspace, "explained:1", data.head(150), y=labels.head(150), shap=False)
    assert with_labels.importances.iloc[0]["feature"] == "signal"
    assert _artifacts(local_workspace, version.run_id, "explanations/explained-1") == {
        "importance.csv",
        "importance.png",
    }
    assert result._repr_html_().startswith('<img alt="feature importance')


def test_tree_model_shap_values_sum_to_its_probabilities(local_workspace: Workspace, signal_data):
    from sklearn.ensemble import RandomForestClassifier

    data, labels = signal_data
    model = RandomForestClassifier(n_estimators=20, max_depth=5, random_state=0).fit(data, labels)
    version = local_workspace.models.register(model, "trees")
    result = explain(local_workspace, "trees:1", data)

    shap = result.shap
    assert shap is not None and shap.explainer == "tree"
    assert shap.values.shape == (SHAP_ROWS, 3) and shap.base_values.shape == (SHAP_ROWS,)
    assert shap.outputs == ["1"]  # the positive class of a binary classifier
    rows = shap.data.head(5)
    expected = model.predict_proba(rows)[:, 1]
    np.testing.assert_allclose(shap.base_values[:5] + shap.values[:5].sum(axis=1), expected, atol=1e-6)
    assert shap.importance().iloc[0]["feature"] == "signal"

    folder = f"explanations/trees-{version.version}"
    assert {"shap_values.npz", "shap_importance.csv", "shap_summary.png"} <= _artifacts(
        local_workspace, version.run_id, folder
    )
    stored = np.load(local_workspace.client.download_artifacts(version.run_id, f"{folder}/shap_values.npz"))
    np.testing.assert_array_equal(stored["values"], shap.values)
    assert list(stored["features"]) == ["signal", "noise1", "noise2"]
    png = local_workspace.client.download_artifacts(version.run_id, f"{folder}/shap_summary.png")
    assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = result._repr_html_()
    assert html.count("<img") == 2 and 'alt="SHAP values of trees:1"' in html


def test_regressor_tree_shap_values_sum_to_its_predictions(local_workspace: Workspace, signal_data):
    from sklearn.ensemble import GradientBoostingRegressor

    data, _ = signal_data
    target = 3 * data["signal"] + 0.1 * data["noise1"]
    model = GradientBoostingRegressor(n_estimators=30, random_state=0).fit(data, target)
    local_workspace.models.register(model, "boosted")
    shap = explain(local_workspace, "boosted:1", data.head(40)).shap
    assert shap is not None and shap.explainer == "tree" and shap.outputs == ["output"]
    assert shap.values.shape == (40, 3)
    np.testing.assert_allclose(shap.base_values + shap.values.sum(axis=1), model.predict(shap.data), atol=1e-6)


def test_other_models_get_a_model_agnostic_explainer(local_workspace: Workspace):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data, labels = load_iris(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(data, labels)
    local_workspace.models.register(model, "iris")
    shap = explain(local_workspace, "iris:1", data.sample(30, random_state=1)).shap
    assert shap is not None and shap.explainer == "permutation"
    assert shap.values.shape == (30, 4, 3) and shap.outputs == ["0", "1", "2"]
    # SHAP values are additive here too: base + contributions = the probabilities of each class
    np.testing.assert_allclose(shap.base_values + shap.values.sum(axis=1), model.predict_proba(shap.data), atol=1e-6)
    assert shap.importance().iloc[0]["feature"].startswith("petal")


def test_a_model_answering_words_keeps_its_permutation_importance(local_workspace: Workspace, signal_data, tmp_path):
    import mlflow.pyfunc

    class Words(mlflow.pyfunc.PythonModel):  # no native model, no probabilities: nothing SHAP can explain
        def predict(self, context, model_input, params=None):
            return ["yes" if value > 0 else "no" for value in model_input["signal"]]

    data, _ = signal_data
    mlflow.pyfunc.save_model(str(tmp_path / "words"), python_model=Words())
    local_workspace.models.register(tmp_path / "words", "words")
    result = explain(local_workspace, "words:1", data.head(60))
    assert result.importances.iloc[0]["feature"] == "signal"
    assert result.shap is None and "SHAP explains numbers" in result.note
    with pytest.raises(InvalidInput, match="SHAP explains numbers"):
        explain(local_workspace, "words:1", data.head(60), shap=True)


def test_without_shap_installed(local_workspace: Workspace, signal_data, monkeypatch: pytest.MonkeyPatch):
    from sklearn.tree import DecisionTreeClassifier

    data, labels = signal_data
    local_workspace.models.register(DecisionTreeClassifier(random_state=0).fit(data, labels), "plain")
    monkeypatch.setitem(sys.modules, "shap", None)  # makes `import shap` fail
    result = explain(local_workspace, "plain:1", data.head(50))
    assert result.shap is None and "pip install shap" in result.note
    assert "pip install shap" in result._repr_html_()
    with pytest.raises(InvalidInput, match=r"pip install shap .*shap=False"):
        explain(local_workspace, "plain:1", data.head(50), shap=True)


def test_bad_input(local_workspace: Workspace):
    with pytest.raises(InvalidInput, match="DataFrame"):
        explain(local_workspace, "x:1", [[1, 2]])
