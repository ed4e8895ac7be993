"""Data drift between a reference and a current table, with evidently's report, plus simple data-quality checks.

Column types are told to evidently up front (it would otherwise infer them with a pass over the data), and the
report is computed once; the per-feature verdicts come from that same report.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_mlops.exceptions import InvalidInput


@dataclass
class DriftResult:
    """What drifted: ``.drifted``, ``.drift_share``, ``.features`` (a DataFrame), plus data-quality findings."""

    drifted: bool
    drift_share: float
    features: Any  # pandas.DataFrame: feature, drifted, score, method, threshold
    quality: dict[str, Any]
    threshold: float
    rows: dict[str, int]
    _snapshot: Any = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "drift_share": self.drift_share,
            "threshold": self.threshold,
            "rows": self.rows,
            "features": self.features.to_dict(orient="records"),
            "quality": self.quality,
        }

    def save_html(self, path: str | Path) -> Path:
        target = Path(path)
        target.write_text(self.html())
        return target

    def save_json(self, path: str | Path) -> Path:
        target = Path(path)
        target.write_text(json.dumps({"summary": self.to_dict(), "evidently": self._snapshot.dict()}, default=str))
        return target

    def html(self) -> str:
        return self._snapshot.get_html_str(as_iframe=False)

    def _repr_html_(self) -> str:
        # In an iframe: the report's scripts run there whatever the notebook's trust, so it never stays "Loading…".
        verdict = "drift detected" if self.drifted else "no drift"
        summary = (
            f"<p><b>{verdict}</b>: {self.drift_share:.0%} of the features drifted "
            f"(threshold {self.threshold:.0%}); {self.rows['reference']} reference rows, "
            f"{self.rows['current']} current.</p>"
        )
        frame = f'<iframe srcdoc="{html.escape(self.html())}" style="width:100%;height:720px;border:0"></iframe>'
        return summary + frame


def drift(
    reference: Any,
    current: Any,
    *,
    features: list[str] | None = None,
    drift_share: float = 0.5,
    column_threshold: float | None = None,
) -> DriftResult:
    """Compare ``current`` with ``reference`` (DataFrames) with evidently's data drift tests."""
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    if not isinstance(reference, pd.DataFrame) or not isinstance(current, pd.DataFrame):
        raise InvalidInput("drift() compares two pandas DataFrames: reference and current.")
    columns = features or [c for c in reference.columns if c in current.columns]
    missing = sorted(set(columns) - set(current.columns)) + sorted(set(columns) - set(reference.columns))
    if missing or not columns:
        raise InvalidInput(f"Columns missing from the data: {missing or 'no common column'}.")
    if len(reference) < 2 or len(current) < 2:
        raise InvalidInput(
            f"Drift needs at least 2 rows on each side; got {len(reference)} reference, {len(current)} current."
        )
    numeric = [c for c in columns if pd.api.types.is_numeric_dtype(reference[c])]
    categorical = [c for c in columns if c not in numeric]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    snapshot = Report([DataDriftPreset(columns=columns, drift_share=drift_share, threshold=column_threshold)]).run(
        current_data=Dataset.from_pandas(current[columns], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    rows = []
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            method, threshold, score = config["method"], config["threshold"], float(metric["value"])
            drifted = score < threshold if "p_value" in method else score >= threshold
            rows.append(
                {
                    "feature": config["column"],
                    "drifted": drifted,
                    "score": score,
                    "method": method,
                    "threshold": threshold,
                }
            )
    table = pd.DataFrame(rows, columns=["feature", "drifted", "score", "method", "threshold"])
    share = float(table["drifted"].mean()) if len(table) else 0.0
    return DriftResult(
        drifted=share >= drift_share,
        drift_share=share,
        features=table,
        quality=quality(reference[columns], current[columns]),
        threshold=drift_share,
        rows={"reference": len(reference), "current": len(current)},
        _snapshot=snapshot,
    )


def quality(reference: Any, current: Any) -> dict[str, Any]:
    """Null rate, values of the wrong type, and numbers outside the reference's range, per column."""
    import pandas as pd

    report: dict[str, Any] = {}
    for column in reference.columns:
        values = current[column]
        entry: dict[str, Any] = {"null_rate": float(values.isna().mean()) if len(values) else 0.0}
        if pd.api.types.is_numeric_dtype(reference[column]):
            numbers = pd.to_numeric(values, errors="coerce")
            entry["type_errors"] = int((numbers.isna() & values.notna()).sum())
            low, high = reference[column].min(), reference[column].max()
            entry["out_of_range"] = int(((numbers < low) | (numbers > high)).sum())
        report[str(column)] = entry
    return report
