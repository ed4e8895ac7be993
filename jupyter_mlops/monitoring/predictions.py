"""Prediction drift: what the deployment answered in a window against what its model answers on the reference.

The reference predictions are made once, when the monitor is created, with the scorer the endpoint's workers use
(so an ONNX conversion answers in process exactly as it answers over HTTP) and kept beside the reference. Each run
compares the window's collected outputs with them, output by output, with the distance tests Azure ML's monitors
default to: a normalized Wasserstein distance for numbers, the Jensen-Shannon distance for labels, both drifted at
0.1 and above.
"""

from __future__ import annotations

import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops.exceptions import NotFound

if TYPE_CHECKING:
    from jupyter_mlops.workspace import Workspace

THRESHOLD = 0.1
PREDICTIONS_FILE = "reference_predictions.parquet"
SKIPPED_FILE = "reference_predictions.skipped"  # why there are none: one line of text
_CHUNK_ROWS = 10_000


def prepare(ws: Workspace, folder: Path, endpoint: str, deployment: str | None, reference: Any) -> str | None:
    """Score ``reference`` (every column of it, as the model was given them) with the deployment's model and keep
    the predictions in ``folder``; None when done, else why it could not be (kept as well, for every run to say)."""
    try:
        frame = score_reference(ws, endpoint, deployment, reference)
    except NotFound as exc:  # no model to score with: no deployment, or one with its own scoring script
        reason = exc.message
    except Exception as exc:  # the model does not load or refuses the reference here: the other signals still run
        reason = f"the deployment's model could not score the reference in process ({type(exc).__name__}: {exc})"
    else:
        frame.to_parquet(folder / PREDICTIONS_FILE, index=False)
        return None
    (folder / SKIPPED_FILE).write_text(reason[:2000] + "\n", encoding="utf-8")
    return reason


def reference_predictions(folder: Path) -> tuple[Any, str | None]:
    """(the reference predictions, None), or (None, why there are none)."""
    import pandas as pd

    if (folder / PREDICTIONS_FILE).is_file():
        return pd.read_parquet(folder / PREDICTIONS_FILE), None
    if (folder / SKIPPED_FILE).is_file():
        return None, (folder / SKIPPED_FILE).read_text(encoding="utf-8").strip()
    return None, "the monitor was created without reference predictions"


def score_reference(ws: Workspace, endpoint: str, deployment: str | None, reference: Any) -> Any:
    """The predictions of the deployment's model (by default the one taking the most traffic) on ``reference``,
    one column per output (``outputs_frame``)."""
    from jupyter_mlops.deploy.scoring import ScriptScorer, load_scorer

    row = _deployment(ws, endpoint, deployment)
    if row.scoring_script:
        raise NotFound(f"deployment {row.name} scores with its own script, whose outputs have no known form")
    options = json.loads(row.options or "{}")
    served = ws.layout.served_model(endpoint, f"{row.model_name}-{row.model_version}")
    with tempfile.TemporaryDirectory(prefix="mlops-monitor-") as tmp:
        folder = served if (served / "MLmodel").is_file() else Path(tmp) / "model"
        if folder != served:
            ws.models.download(row.model_name, row.model_version, folder)
        scorer = load_scorer(folder, None, prefer_onnx=options.get("prefer_onnx", True), resources={})
        if isinstance(scorer, ScriptScorer):
            raise NotFound(f"deployment {row.name} scores with its own script, whose outputs have no known form")
        columns = [str(c) for c in reference.columns]
        predictions: list[Any] = []
        for start in range(0, len(reference), _CHUNK_ROWS):
            chunk = reference.iloc[start : start + _CHUNK_ROWS]
            rows = chunk.astype(object).where(chunk.notna(), None).to_numpy().tolist()  # NaN as JSON's null
            payload = {"dataframe_split": {"columns": columns, "data": rows}}
            predictions.extend(scorer.score_payload(payload)["predictions"])
    return outputs_frame(predictions)


def _deployment(ws: Workspace, endpoint: str, deployment: str | None) -> Any:
    from sqlalchemy import select

    from jupyter_mlops.store.schema import ACTIVE_DEPLOYMENT_STATES, Deployment

    if deployment is None:
        live = sorted(ws.endpoints.show(endpoint).deployments, key=lambda d: -d.traffic)
        if not live:
            raise NotFound(f"endpoint {endpoint} has no deployment whose model could score the reference")
        deployment = live[0].name
    with ws.store.session() as session:
        row = session.scalar(
            select(Deployment).where(
                Deployment.endpoint == endpoint,
                Deployment.name == deployment,
                Deployment.status.in_(ACTIVE_DEPLOYMENT_STATES),
            )
        )
    if row is None:
        raise NotFound(f"deployment {endpoint}/{deployment} is not active")
    return row


def outputs_frame(predictions: list[Any]) -> Any:
    """One row per prediction, one column per output: ``prediction`` for a single value, ``prediction_0``, ... for
    a list (class probabilities), the keys for a record (a DataFrame's output)."""
    import pandas as pd

    rows = list(predictions)
    if not rows:
        return pd.DataFrame({"prediction": []})
    first = rows[0]
    if isinstance(first, dict):
        return pd.DataFrame.from_records(rows).rename(columns=str)
    if isinstance(first, (list, tuple)):
        frame = pd.DataFrame([list(r) if isinstance(r, (list, tuple)) else [r] for r in rows])
        return frame.rename(columns=lambda i: f"prediction_{i}")
    return pd.DataFrame({"prediction": rows})


def collected_outputs(entries: Any) -> Any:
    """The outputs of collected requests (``{"predictions": [...]}``), as ``outputs_frame`` makes them."""
    predictions: list[Any] = []
    for entry in entries:
        output = entry.get("output")
        if isinstance(output, dict) and isinstance(output.get("predictions"), list):
            predictions.extend(output["predictions"])
    return outputs_frame(predictions)


def compare(reference: Any, current: Any) -> list[dict[str, Any]]:
    """Per output both sides have: its distance, the test, the threshold and whether it drifted."""
    import pandas as pd
    from evidently.legacy.calculations import stattests
    from evidently.legacy.core import ColumnType

    found = []
    for column in [c for c in reference.columns if c in current.columns]:
        ref, cur = reference[column].dropna(), current[column].dropna()
        if len(ref) < 2 or len(cur) < 2:
            continue
        numeric = pd.api.types.is_numeric_dtype(ref) and pd.api.types.is_numeric_dtype(cur)
        if numeric and pd.concat([ref.head(10_000), cur.head(10_000)]).nunique() > 5:
            test, kind = stattests.wasserstein_stat_test, ColumnType.Numerical
        else:
            test, kind = stattests.jensenshannon_stat_test, ColumnType.Categorical
            ref, cur = ref.astype(str), cur.astype(str)
        outcome = test(ref, cur, kind, THRESHOLD)
        found.append(
            {
                "output": str(column),
                "score": float(outcome.drift_score),
                "method": test.display_name,
                "threshold": float(outcome.actual_threshold),
                "drifted": bool(outcome.drifted),
            }
        )
    return found


def event_payload(
    record: Any, run_id: str, start: datetime, end: datetime, outcomes: list[dict[str, Any]]
) -> dict[str, Any]:
    """``prediction_drift.detected``'s data: ``drift.detected``'s fields, the coefficient being the largest
    distance, with every output's figures."""
    from jupyter_mlops.events import envelope

    return envelope.drift_detected(
        str(record.id),
        record.name,
        run_id,
        str(Path(record.reference).with_name(PREDICTIONS_FILE)),
        f"{record.endpoint}/{record.deployment or '*'}",
        max(o["score"] for o in outcomes),
        start,
        end,
        drifted_outputs=[o["output"] for o in outcomes if o["drifted"]],
        outputs=outcomes,
    )
