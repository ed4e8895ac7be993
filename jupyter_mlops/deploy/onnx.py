"""ONNX conversion with proof: convert, optimise, check parity on a sample, time both, register the result.

The converted model is registered as a new version of the same model, tagged ``converted_from=NAME:VERSION``
and with the measured speed-up; endpoints then serve it in place of the original (``onnx=False`` opts out).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops.exceptions import InvalidInput
from jupyter_mlops.records import ModelVersion, Record

if TYPE_CHECKING:
    from jupyter_mlops.workspace import Workspace

CONVERTED_FROM_TAG = "converted_from"
SUPPORTED = "scikit-learn estimators and pipelines (skl2onnx); PyTorch modules when torch is installed"


@dataclass(frozen=True)
class Conversion(Record):
    source: str
    version: ModelVersion
    max_abs_diff: float
    original_ms_per_row: float
    onnx_ms_per_row: float
    speedup: float


def convert_to_onnx(ws: Workspace, model: str, sample: Any, *, tolerance: float = 1e-4) -> Conversion:
    """Convert ``model`` (``NAME:VERSION``) to ONNX, prove parity on ``sample`` and register the result."""
    import numpy as np

    from jupyter_mlops.refs import ModelRef

    ref = ModelRef.parse(model)
    record = ws.models.get(ref.name, ref.selector)
    original = _load_original(ws, record)
    data = np.asarray(sample.values if hasattr(sample, "values") else sample, dtype=np.float32)
    if data.ndim != 2 or not len(data):
        raise InvalidInput("sample must be a 2-D table (a DataFrame or an array) with at least one row.")
    proto = _convert(original, data)
    session = _session(proto)
    input_name, output_name = session.get_inputs()[0].name, session.get_outputs()[0].name
    expected = np.asarray(original.predict(data), dtype=np.float64)
    got = np.asarray(session.run([output_name], {input_name: data})[0], dtype=np.float64).reshape(expected.shape)
    diff = float(np.max(np.abs(expected - got))) if expected.size else 0.0
    if diff > tolerance:
        raise InvalidInput(
            f"The ONNX version of {record.name}:{record.version} differs from it by up to {diff:.3g} on the sample "
            f"(tolerance {tolerance:g}); nothing was registered. Pass a larger tolerance to accept it."
        )
    row = data[:1]
    original_s = statistics.median(_timed(lambda: original.predict(row)) for _ in range(20))
    onnx_s = statistics.median(_timed(lambda: session.run([output_name], {input_name: row})) for _ in range(20))
    speedup = original_s / onnx_s if onnx_s else float("inf")
    registered = ws.models.register(
        proto,
        record.name,
        tags={
            **record.tags,
            CONVERTED_FROM_TAG: f"{record.name}:{record.version}",
            "onnx_speedup": f"{speedup:.1f}",
            "onnx_max_abs_diff": f"{diff:.3g}",
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
    )


def converted_version(ws: Workspace, name: str, version: int) -> ModelVersion | None:
    """The newest ONNX conversion of ``name:version``, if one was registered."""
    found = [v for v in ws.models.list(f"name={name},{CONVERTED_FROM_TAG}={name}:{version}")]
    return max(found, key=lambda v: v.version) if found else None


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
        except Exception as exc:
            raise InvalidInput(f"skl2onnx cannot convert {type(model).__name__}: {exc}") from exc
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
