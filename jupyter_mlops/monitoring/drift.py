"""Data drift between a reference and a current table with evidently's tests and report, plus data-quality checks.

The per-column verdicts run evidently's own statistical tests once on every row, with the column types known up
front; the HTML report, which costs far more than the tests, is drawn from a sample when someone looks at it.
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
    _report: Any = field(default=None, repr=False)  # builds the evidently snapshot, once, when asked
    _snapshot: Any = field(default=None, repr=False)

    @property
    def snapshot(self) -> Any:
        """evidently's report (a Snapshot), drawn on first use."""
        if self._snapshot is None:
            self._snapshot = self._report()
        return self._snapshot

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
        target.write_text(json.dumps({"summary": self.to_dict(), "evidently": self.snapshot.dict()}, default=str))
        return target

    def html(self) -> str:
        return self.snapshot.get_html_str(as_iframe=False)

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


REPORT_SAMPLE_ROWS = 10_000


def drift(
    reference: Any,
    current: Any,
    *,
    features: list[str] | None = None,
    drift_share: float = 0.5,
    column_threshold: float | None = None,
) -> DriftResult:
    """Compare ``current`` with ``reference`` (DataFrames) with evidently's data drift tests.

    Each column's test (the one evidently's preset would pick) runs once, on every row. The evidently report is
    drawn when first asked for (``html()``, ``save_html()``, the notebook display), from a sample of at most
    ``REPORT_SAMPLE_ROWS`` rows per side: its charts look the same, and it costs seconds instead of minutes.
    """
    import pandas as pd

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
    rows = []
    tests = {}
    for column in columns:
        test, kind = _stattest(reference[column], current[column], column in numeric)
        tests[column] = test
        outcome = test(reference[column].dropna(), current[column].dropna(), kind, column_threshold)
        rows.append(
            {
                "feature": column,
                "drifted": bool(outcome.drifted),
                "score": float(outcome.drift_score),
                "method": test.display_name,
                "threshold": float(outcome.actual_threshold),
            }
        )
    table = pd.DataFrame(rows, columns=["feature", "drifted", "score", "method", "threshold"])
    share = float(table["drifted"].mean()) if len(table) else 0.0
    sample_ref, sample_cur = (_sample(frame, columns) for frame in (reference, current))
    return DriftResult(
        drifted=share >= drift_share,
        drift_share=share,
        features=table,
        quality=quality(reference, current, columns),
        threshold=drift_share,
        rows={"reference": len(reference), "current": len(current)},
        _report=lambda: _report(sample_ref, sample_cur, tests, numeric, drift_share, column_threshold),
    )


def _stattest(reference: Any, current: Any, numeric: bool) -> tuple[Any, Any]:
    """The test evidently's preset picks (by size, type and distinct values), deciding on a sample of values:
    the full ``nunique`` evidently runs costs more than the test itself on large data."""
    import pandas as pd
    from evidently.legacy.calculations import stattests
    from evidently.legacy.core import ColumnType

    kind = ColumnType.Numerical if numeric else ColumnType.Categorical
    distinct = pd.concat([reference.head(10_000), current.head(10_000)]).nunique()
    if len(reference) <= 1000:
        if numeric and distinct > 5:
            return stattests.ks_stat_test, kind
        return (stattests.chi_stat_test if distinct > 2 else stattests.z_stat_test), kind
    if numeric and distinct > 5:
        return stattests.wasserstein_stat_test, kind
    return stattests.jensenshannon_stat_test, kind


def _sample(frame: Any, columns: list[str]) -> Any:
    """At most ``REPORT_SAMPLE_ROWS`` rows of ``columns``, sampled before selecting so the table is never copied."""
    return (frame if len(frame) <= REPORT_SAMPLE_ROWS else frame.sample(REPORT_SAMPLE_ROWS, random_state=0))[columns]


def _report(
    reference: Any, current: Any, tests: dict[str, Any], numeric: list[str], drift_share: float, threshold: float | None
) -> Any:
    """evidently's report with the column types and each column's test decided on all the rows, so that a sample
    shows the same tests as the verdicts."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    columns = list(tests)
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=[c for c in columns if c not in numeric])
    preset = DataDriftPreset(columns=columns, drift_share=drift_share, threshold=threshold, per_column_method=tests)
    return Report([preset]).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )


def quality(reference: Any, current: Any, columns: list[str]) -> dict[str, Any]:
    """Null rate, values of the wrong type, and numbers outside the reference's range, per column (one column at a
    time: a copy of the whole table would double the memory drift needs)."""
    import pandas as pd

    report: dict[str, Any] = {}
    for column in columns:
        values = current[column]
        entry: dict[str, Any] = {"null_rate": float(values.isna().mean()) if len(values) else 0.0}
        if pd.api.types.is_numeric_dtype(reference[column]):
            numbers = pd.to_numeric(values, errors="coerce")
            entry["type_errors"] = int((numbers.isna() & values.notna()).sum())
            low, high = reference[column].min(), reference[column].max()
            entry["out_of_range"] = int(((numbers < low) | (numbers > high)).sum())
        report[str(column)] = entry
    return report
