"""Explanations of a real registered model, stored with its version."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jupyter_mlops import InvalidInput, Workspace
from jupyter_mlops.explain import explain


def test_permutation_importance_finds_the_feature_that_matters(local_workspace: Workspace):
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    data = pd.DataFrame(rng.normal(size=(300, 3)), columns=["signal", "noise1", "noise2"])
    labels = (data["signal"] > 0).astype(int)
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(data, labels)
    version = local_workspace.models.register(model, "explained")
    result = explain(local_workspace, f"explained:{version.version}", data.head(150))
    assert result.importances.iloc[0]["feature"] == "signal"
    assert result.importances.iloc[0]["importance"] > 5 * max(result.importances.iloc[1:]["importance"].max(), 0.01)
    with_labels = explain(local_workspace, "explained:1", data.head(150), y=labels.head(150))
    assert with_labels.importances.iloc[0]["feature"] == "signal"
    stored = {a.path for a in local_workspace.client.list_artifacts(version.run_id, "explanations/explained-1")}
    assert stored == {"explanations/explained-1/importance.csv", "explanations/explained-1/importance.png"}
    assert result._repr_html_().startswith('<img alt="feature importance')


def test_bad_input(local_workspace: Workspace):
    with pytest.raises(InvalidInput, match="DataFrame"):
        explain(local_workspace, "x:1", [[1, 2]])
