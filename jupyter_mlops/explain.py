"""Explanations of a model version: which features its predictions depend on.

Permutation importance (scikit-learn) works for any model: a feature matters as much as shuffling it changes the
model's answers (against the labels when given, else against the model's own predictions). SHAP values are added
when ``shap`` is installed: exact and fast for tree models (TreeExplainer), model-agnostic (permutation over a
background sample) otherwise, on a bounded sample of rows because their cost grows with it. The result is stored
with the model version (artifacts of its run) and drawn inline.
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

SHAP_ROWS = 200  # rows SHAP explains: enough for a summary plot, bounded so large frames stay quick
BACKGROUND_ROWS = 50  # rows the model-agnostic explainer integrates over when it hides a feature
MISSING_SHAP = "SHAP values need the shap package, which is not installed: pip install shap"


@dataclass
class ShapValues:
    """SHAP values of a sample of rows: ``values[i, j]`` is what feature j adds to row i's output, and
    ``base_values[i] + values[i].sum()`` is that output (per class on a last axis for multi-class models)."""

    explainer: str  # "tree" or "permutation"
    outputs: list[str]  # what is explained: one name, or one class label per slice of the last axis
    values: Any  # ndarray (rows, features) or (rows, features, classes)
    base_values: Any  # ndarray (rows,) or (rows, classes)
    data: Any  # DataFrame: the rows explained

    def importance(self) -> Any:
        """Mean absolute SHAP value per feature (summed over classes), most important first."""
        import numpy as np
        import pandas as pd

        magnitude = np.abs(self.values).mean(axis=0)
        magnitude = magnitude.sum(axis=1) if magnitude.ndim > 1 else magnitude
        table = pd.DataFrame({"feature": self.data.columns, "mean_abs_shap": magnitude})
        return table.sort_values("mean_abs_shap", ascending=False).reset_index(drop=True)

    def plot_png(self) -> bytes:
        """A beeswarm summary (one output) or a bar plot per class (several), as shap draws them."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import shap

        plt.figure()  # shap draws on the current figure
        if self.values.ndim == 2:
            shap.summary_plot(self.values, self.data, max_display=20, show=False, rng=0)  # a seeded jitter
        else:
            per_class = [self.values[..., k] for k in range(self.values.shape[-1])]
            shap.summary_plot(per_class, self.data, plot_type="bar", class_names=self.outputs, show=False, rng=0)
        figure = plt.gcf()
        explained = "the model output" if self.outputs == ["output"] else f"class {', '.join(self.outputs)}"
        figure.suptitle(f"SHAP values ({self.explainer} explainer) of {explained}", fontsize=10)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
        plt.close(figure)
        return buffer.getvalue()


@dataclass
class Explanation:
    model: str
    method: str
    importances: Any  # DataFrame: feature, importance, std (most important first)
    artifact_path: str | None
    shap: ShapValues | None = None
    note: str | None = None  # why there are no SHAP values, when the caller did not decline them

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "method": self.method,
            "importances": self.importances.to_dict(orient="records"),
            "shap_importances": self.shap.importance().to_dict(orient="records") if self.shap else None,
            "artifact_path": self.artifact_path,
            "note": self.note,
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
        images = [(f"feature importance of {self.model}", self.plot_png())]
        if self.shap is not None:
            images.append((f"SHAP values of {self.model}", self.shap.plot_png()))
        html = "".join(
            f'<img alt="{alt}" style="vertical-align:top" src="data:image/png;base64,{_base64(png)}"/>'
            for alt, png in images
        )
        return html + (f"<p><i>{self.note}</i></p>" if self.note else "")


def explain(
    ws: Workspace,
    model: str,
    data: Any,
    *,
    y: Any = None,
    n_repeats: int = 5,
    shap: bool | None = None,
) -> Explanation:
    """Explain ``model`` (``NAME:VERSION``) on ``data`` (a DataFrame); stores the result with the version.

    ``shap``: None adds SHAP values when the package is installed, True requires them, False skips them.
    """
    import mlflow.pyfunc
    import numpy as np
    import pandas as pd
    from sklearn.inspection import permutation_importance

    from jupyter_mlops.refs import ModelRef

    if not isinstance(data, pd.DataFrame) or len(data) < 2:
        raise InvalidInput("explain() needs a pandas DataFrame with at least 2 rows of the model's inputs.")
    shap_module = _shap_module(required=shap is True) if shap is not False else None
    ref = ModelRef.parse(model)
    record = ws.models.get(ref.name, ref.selector)
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
    if shap_module is not None:
        try:
            explanation.shap = _shap_values(shap_module, loaded, predict, data)
        except InvalidInput as exc:  # a model SHAP cannot explain: an error only when SHAP was asked for
            if shap:
                raise
            explanation.note = exc.message
    elif shap is None:
        explanation.note = MISSING_SHAP
    if record.run_id:
        explanation.artifact_path = _store(
            ws, record.run_id, f"explanations/{record.name}-{record.version}", explanation
        )
    return explanation


def _shap_module(*, required: bool) -> Any:
    try:
        import shap
    except ImportError as exc:
        if required:
            raise InvalidInput(f"{MISSING_SHAP} (or call explain with shap=False).") from exc
        return None
    return shap


def _shap_values(shap: Any, loaded: Any, predict: Any, data: Any) -> ShapValues:
    """TreeExplainer when the model is a tree ensemble shap knows, else a permutation explainer over a background
    sample of ``data``; binary probabilities keep the positive class only (the other is its mirror image)."""
    import numpy as np
    import pandas as pd

    try:
        raw = loaded.get_raw_model()
    except (NotImplementedError, AttributeError):  # not every MLflow flavor exposes its native model
        raw = None
    sample = data.sample(SHAP_ROWS, random_state=0) if len(data) > SHAP_ROWS else data
    classes = [str(c) for c in getattr(raw, "classes_", [])]
    try:
        tree = shap.TreeExplainer(raw)
    except (TypeError, ValueError, NotImplementedError):  # shap's InvalidModelError is a ValueError
        tree = None
    if tree is not None:
        explained = tree(sample)
        kind = "tree"
    else:
        if hasattr(raw, "predict_proba"):

            def output(rows: Any) -> Any:
                return raw.predict_proba(pd.DataFrame(rows, columns=data.columns))
        else:
            classes = []
            answers = predict(sample.head(2))
            if not np.issubdtype(answers.dtype, np.number):
                raise InvalidInput(
                    f"No SHAP values: SHAP explains numbers, and this model answers {answers.dtype} values and "
                    "has no predict_proba. Call explain with shap=False.",
                )
            output = predict

        background = shap.maskers.Independent(data, max_samples=BACKGROUND_ROWS)
        explainer = shap.PermutationExplainer(output, background, seed=0)
        explained = explainer(sample.to_numpy(), max_evals=max(500, 2 * data.shape[1] + 1))  # a progress bar after 10 s
        kind = "permutation"
    values, base = np.asarray(explained.values), np.asarray(explained.base_values)
    if values.ndim == 3 and values.shape[-1] == 2:
        values, base = values[..., 1], base[..., 1]
        classes = classes[1:]
    outputs = classes if values.ndim == 3 or len(classes) == 1 else ["output"]
    return ShapValues(kind, outputs, values, base, sample.reset_index(drop=True))


def _store(ws: Workspace, run_id: str, path: str, explanation: Explanation) -> str:
    """Artifacts of the version's run: the tables (CSV), the plots (PNG), the raw SHAP arrays (NPZ)."""
    import numpy as np

    from jupyter_mlops import _mlflow

    with (
        tempfile.TemporaryDirectory() as tmp,
        _mlflow.translated_errors(f"storing the explanation of {explanation.model}"),
    ):
        folder = Path(tmp)
        explanation.importances.to_csv(folder / "importance.csv", index=False)
        (folder / "importance.png").write_bytes(explanation.plot_png())
        if explanation.shap is not None:
            values = explanation.shap
            values.importance().to_csv(folder / "shap_importance.csv", index=False)
            (folder / "shap_summary.png").write_bytes(values.plot_png())
            np.savez_compressed(
                folder / "shap_values.npz",
                values=values.values,
                base_values=values.base_values,
                data=values.data.to_numpy(),
                features=np.asarray(values.data.columns, dtype=str),
                outputs=np.asarray(values.outputs, dtype=str),
                explainer=np.asarray(values.explainer),
            )
        ws.client.log_artifacts(run_id, tmp, path)
    return f"runs:/{run_id}/{path}"


def _base64(png: bytes) -> str:
    return base64.b64encode(png).decode()
