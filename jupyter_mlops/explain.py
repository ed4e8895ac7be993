"""Explanations of a model version: which features its predictions depend on.

Permutation importance (scikit-learn) works for any model: a feature matters as much as shuffling it changes the
model's answers (against the labels when given, else against the model's own predictions). SHAP values are added
when ``shap`` is installed. The result is stored with the model version (artifacts of its run) and drawn inline.
"""

from __future__ import annotations

import base64
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops.exceptions import InvalidInput

if TYPE_CHECKING:
    from jupyter_mlops.workspace import Workspace


@dataclass
class Explanation:
    model: str
    method: str
    importances: Any  # DataFrame: feature, importance, std (most important first)
    artifact_path: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "method": self.method,
            "importances": self.importances.to_dict(orient="records"),
            "artifact_path": self.artifact_path,
        }

    def plot_png(self) -> bytes:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        top = self.importances.head(20).iloc[::-1]
        figure, axis = plt.subplots(figsize=(6, 0.3 * len(top) + 1))
        axis.barh(top["feature"].astype(str), top["importance"], xerr=top["std"], color="#4c78a8")
        axis.set_xlabel(f"importance ({self.method})")
        axis.set_title(self.model)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
        plt.close(figure)
        return buffer.getvalue()

    def _repr_html_(self) -> str:
        image = base64.b64encode(self.plot_png()).decode()
        return f'<img alt="feature importance of {self.model}" src="data:image/png;base64,{image}"/>'


def explain(ws: Workspace, model: str, data: Any, *, y: Any = None, n_repeats: int = 5) -> Explanation:
    """Explain ``model`` (``NAME:VERSION``) on ``data`` (a DataFrame); stores the result with the version."""
    import mlflow.pyfunc
    import numpy as np
    import pandas as pd
    from sklearn.inspection import permutation_importance

    from jupyter_mlops import _mlflow
    from jupyter_mlops.deploy.endpoints import _model_ref

    if not isinstance(data, pd.DataFrame) or len(data) < 2:
        raise InvalidInput("explain() needs a pandas DataFrame with at least 2 rows of the model's inputs.")
    record = ws.models.get(*_model_ref(model))
    with tempfile.TemporaryDirectory() as tmp:
        loaded = mlflow.pyfunc.load_model(str(ws.models.download(record.name, record.version, Path(tmp) / "m")))

    def predict(frame: Any) -> Any:
        output = loaded.predict(pd.DataFrame(frame, columns=data.columns))
        output = output.iloc[:, 0] if hasattr(output, "iloc") and getattr(output, "ndim", 1) > 1 else output
        return np.asarray(output).ravel()

    target = np.asarray(y) if y is not None else predict(data)

    class _Adapter:  # what permutation_importance expects: fit-free, predict + score
        def fit(self, *args: Any) -> _Adapter:
            return self

        def predict(self, frame: Any) -> Any:
            return predict(frame)

        def score(self, frame: Any, truth: Any) -> float:
            return float(np.mean(predict(frame) == truth))

    result = permutation_importance(_Adapter(), data, target, n_repeats=n_repeats, random_state=0)
    table = (
        pd.DataFrame({"feature": data.columns, "importance": result.importances_mean, "std": result.importances_std})
        .sort_values("importance", ascending=False)
        .reset_index(drop=True)
    )
    explanation = Explanation(f"{record.name}:{record.version}", "permutation", table, None)
    if record.run_id:
        path = f"explanations/{record.name}-{record.version}"
        with tempfile.TemporaryDirectory() as tmp, _mlflow.translated_errors(f"storing the explanation of {model}"):
            table.to_csv(Path(tmp) / "importance.csv", index=False)
            (Path(tmp) / "importance.png").write_bytes(explanation.plot_png())
            ws.client.log_artifacts(record.run_id, tmp, path)
        explanation.artifact_path = f"runs:/{record.run_id}/{path}"
    return explanation
