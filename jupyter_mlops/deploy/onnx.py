"""ONNX conversion with proof: convert, optimise, check parity on a sample, time both, register the result.

The converted model is registered as a new version of the same model, tagged ``converted_from=NAME:VERSION``
and with the measured speed-up, with the rows its parity was proven on (``parity_sample.parquet``); endpoints then
serve it in place of the original (``onnx=False`` opts out).

Parity covers the input contract too: the source model is probed with rows of the sample holding a missing value
(NaN) and an infinite one in each column. A value the source refuses, or one whose ONNX answer differs from the
source's, is recorded as refused in that column (in the ONNX metadata, ``CONTRACT_KEY``, and in the tags
``onnx_missing_values`` / ``onnx_infinite_values``), and the ONNX scorer refuses it with a 400 naming the column:
the conversion never scores what its source would refuse, nor answers differently where its source accepts.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops.deploy.scoring import CONTRACT_KEY, KINDS
from jupyter_mlops.exceptions import InvalidInput
from jupyter_mlops.records import ModelVersion, Record

if TYPE_CHECKING:
    from jupyter_mlops.workspace import Workspace

CONVERTED_FROM_TAG = "converted_from"
SUPPORTED = "scikit-learn estimators and pipelines (skl2onnx); PyTorch modules when torch is installed"
PROBE_ROWS = 20  # rows of the sample probed with a missing or infinite value in each column
PARITY_SAMPLE = "parity_sample.parquet"  # in the conversion's folder: the rows its parity was proven on
REFUSED_BY_SOURCE = "the source model refuses it"
DIFFERS = "the ONNX conversion does not score it as the source model does (deploy with onnx=False to send it)"


@dataclass(frozen=True)
class Conversion(Record):
    source: str
    version: ModelVersion
    max_abs_diff: float
    original_ms_per_row: float
    onnx_ms_per_row: float
    speedup: float
    missing_values: str = "accepted"  # or which columns refuse them and why (the tag onnx_missing_values)
    infinite_values: str = "accepted"


def convert_to_onnx(ws: Workspace, model: str, sample: Any, *, tolerance: float = 1e-4) -> Conversion:
    """Convert ``model`` (``NAME:VERSION``) to ONNX, prove parity on ``sample`` (its predictions, and which
    missing or infinite values it accepts) and register the result."""

    from jupyter_mlops.refs import ModelRef

    ref = ModelRef.parse(model)
    record = ws.models.get(ref.name, ref.selector)
    original = _load_original(ws, record)
    data, columns = _sample(sample, getattr(original, "feature_names_in_", None))
    proto = _convert(original, data)
    session = _session(proto)
    input_name, output_name = session.get_inputs()[0].name, session.get_outputs()[0].name

    def converted(rows: Any) -> Any:
        return session.run([output_name], {input_name: rows})[0]

    expected = _predict(original, data, columns)
    diff = _difference(expected, converted(data))
    if diff > tolerance:
        raise InvalidInput(
            f"The ONNX version of {record.name}:{record.version} differs from it by up to {diff:.3g} on the sample "
            f"(tolerance {tolerance:g}); nothing was registered. Pass a larger tolerance to accept it."
        )
    refuses = {kind: _probe(original, converted, data, columns, kind, tolerance) for kind in KINDS}
    contract = {"columns": columns, "refuses": refuses}
    proto.metadata_props.add(key=CONTRACT_KEY, value=json.dumps(contract))
    summaries = {kind: _summary(refuses[kind], columns, data.shape[1]) for kind in KINDS}
    row = data[:1]
    original_s = statistics.median(_timed(lambda: _predict(original, row, columns)) for _ in range(20))
    onnx_s = statistics.median(_timed(lambda: converted(row)) for _ in range(20))
    speedup = original_s / onnx_s if onnx_s else float("inf")
    registered = _register(
        ws,
        proto,
        data,
        columns,
        record.name,
        tags={
            **record.tags,
            CONVERTED_FROM_TAG: f"{record.name}:{record.version}",
            "onnx_speedup": f"{speedup:.1f}",
            "onnx_max_abs_diff": f"{diff:.3g}",
            "onnx_parity_rows": str(len(data)),
            "onnx_missing_values": summaries["missing"],
            "onnx_infinite_values": summaries["infinite"],
        },
        description=f"ONNX conversion of version {record.version} ({speedup:.0f}x faster on one row)",
    )
    return Conversion(
        source=f"{record.name}:{record.version}",
        version=registered,
        max_abs_diff=diff,
        original_ms_per_row=original_s * 1000,
        onnx_ms_per_row=onnx_s * 1000,
        speedup=speedup,
        missing_values=summaries["missing"],
        infinite_values=summaries["infinite"],
    )


def _register(
    ws: Workspace, proto: Any, data: Any, columns: list[str] | None, name: str, **kwargs: Any
) -> ModelVersion:
    """Register the conversion as an MLflow ONNX model with the parity sample beside it. Its requirements are
    named rather than inferred: MLflow infers them by importing the model in a subprocess, seconds per conversion."""
    import mlflow.onnx
    import onnx
    import onnxruntime
    import pandas as pd

    from jupyter_mlops._mlflow import quiet

    with tempfile.TemporaryDirectory(prefix="mlops-onnx-") as tmp:
        folder = Path(tmp) / "model"
        requirements = [f"onnx=={onnx.__version__}", f"onnxruntime=={onnxruntime.__version__}"]
        with quiet("mlflow.onnx", "mlflow.models"):
            mlflow.onnx.save_model(proto, str(folder), pip_requirements=requirements)
        frame = pd.DataFrame(data, columns=columns or [str(i) for i in range(data.shape[1])])
        frame.to_parquet(folder / PARITY_SAMPLE, index=False)
        return ws.models.register(folder, name, **kwargs)


def converted_version(ws: Workspace, name: str, version: int) -> ModelVersion | None:
    """The newest ONNX conversion of ``name:version``, if one was registered."""
    found = [v for v in ws.models.list(f"name={name},{CONVERTED_FROM_TAG}={name}:{version}")]
    return max(found, key=lambda v: v.version) if found else None


def _sample(sample: Any, features: Any) -> tuple[Any, list[str] | None]:
    """(float32 rows, column names): a DataFrame's columns in the order the model was fitted on."""
    import numpy as np

    names = [str(c) for c in features] if features is not None else None
    if hasattr(sample, "columns"):
        given = [str(c) for c in sample.columns]
        if names is not None:
            missing = [c for c in names if c not in given]
            if missing:
                raise InvalidInput(f"The sample lacks the model's feature(s) {', '.join(missing)}.")
            sample = sample[list(features)]
        else:
            names = given
    try:
        data = np.asarray(sample.values if hasattr(sample, "values") else sample, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"sample must hold numbers only: {exc}.") from exc
    if data.ndim != 2 or not len(data):
        raise InvalidInput("sample must be a 2-D table (a DataFrame or an array) with at least one row.")
    if names is not None and len(names) != data.shape[1]:
        names = None
    return data, names


def _predict(model: Any, rows: Any, columns: list[str] | None) -> Any:
    """The source model's predictions, given what it was fitted on: a DataFrame with the feature names when it
    has them (no "does not have valid feature names" warning), an array otherwise."""
    import numpy as np

    if getattr(model, "feature_names_in_", None) is not None and columns is not None:
        import pandas as pd

        rows = pd.DataFrame(rows, columns=columns)
    return np.asarray(model.predict(rows))


def _difference(expected: Any, got: Any) -> float:
    """Largest absolute difference; labels that are not numbers differ by 0 or infinitely."""
    import numpy as np

    got = np.asarray(got).reshape(expected.shape)
    if not expected.size:
        return 0.0
    if expected.dtype.kind not in "biuf":
        return 0.0 if np.array_equal(expected.astype(str), got.astype(str)) else float("inf")
    expected, got = expected.astype(np.float64), got.astype(np.float64)
    both_nan = np.isnan(expected) & np.isnan(got)
    return float(np.max(np.where(both_nan, 0.0, np.abs(expected - got)), initial=0.0))


def _probe(
    original: Any, converted: Any, data: Any, columns: list[str] | None, kind: str, tolerance: float
) -> dict[str, str]:
    """{column index: why} of the columns where a ``kind`` value (missing: NaN, infinite: +inf) is refused: the
    source refuses it, or the conversion answers otherwise. One call for every column while the source accepts."""
    import numpy as np

    value = np.nan if kind == "missing" else np.inf
    rows = data[:PROBE_ROWS]
    blocks = []
    for column in range(data.shape[1]):
        block = rows.copy()
        block[:, column] = value
        blocks.append(block)
    try:
        together = _predict(original, np.vstack(blocks), columns)
        expected: list[Any] = np.split(together, len(blocks))
    except Exception:  # the source refuses some column: find which, one at a time
        expected = []
        for block in blocks:
            try:
                expected.append(_predict(original, block, columns))
            except Exception:
                expected.append(None)
    refused = {}
    for column, (block, answer) in enumerate(zip(blocks, expected, strict=True)):
        if answer is None:
            refused[str(column)] = REFUSED_BY_SOURCE
        elif _difference(answer, converted(block)) > tolerance:
            refused[str(column)] = DIFFERS
    return refused


def _summary(refused: dict[str, str], columns: list[str] | None, width: int) -> str:
    if not refused:
        return "accepted"
    reasons = sorted(set(refused.values()))
    why = reasons[0] if len(reasons) == 1 else "; ".join(reasons)
    if len(refused) == width:
        return f"refused in every column: {why}"
    names = [columns[int(c)] if columns else c for c in refused]
    return f"refused in {', '.join(names)}: {why}"


def _load_original(ws: Workspace, record: ModelVersion) -> Any:
    with tempfile.TemporaryDirectory(prefix="mlops-onnx-") as tmp:
        folder = ws.models.download(record.name, record.version, Path(tmp) / "model")
        mlmodel = folder / "MLmodel"
        if not mlmodel.is_file():
            raise InvalidInput(
                f"{record.name}:{record.version} is not an MLflow model; ONNX conversion supports {SUPPORTED}."
            )
        import yaml

        flavors = yaml.safe_load(mlmodel.read_text()).get("flavors", {})
        if "sklearn" in flavors:
            import mlflow.sklearn

            return mlflow.sklearn.load_model(str(folder))
        if "pytorch" in flavors:
            import mlflow.pytorch

            return mlflow.pytorch.load_model(str(folder))
    raise InvalidInput(
        f"{record.name}:{record.version} has flavour(s) {', '.join(sorted(flavors)) or 'none'}; "
        f"ONNX conversion supports {SUPPORTED}."
    )


def _convert(model: Any, data: Any) -> Any:
    module = type(model).__module__ or ""
    if module.startswith("sklearn"):
        from skl2onnx import to_onnx

        try:
            return to_onnx(model, data[:1], options={"zipmap": False}, target_opset=None)
        except Exception as exc:  # its messages can hold the whole graph: the first line says what failed
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InvalidInput(f"skl2onnx cannot convert {type(model).__name__}: {first[:300]}") from exc
    if module.startswith("torch"):
        import io

        import torch

        buffer = io.BytesIO()
        torch.onnx.export(
            model.eval(),
            torch.from_numpy(data[:1]),
            buffer,
            dynamic_axes={"input": {0: "batch"}},
            input_names=["input"],
        )
        import onnx

        return onnx.load_from_string(buffer.getvalue())
    raise InvalidInput(f"Cannot convert a {module}.{type(model).__name__} to ONNX; supported: {SUPPORTED}.")


def _session(proto: Any) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = 1
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _timed(call: Any) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started
