"""What a deployment takes and returns, as v2 model metadata: from its ONNX graph (the tensor onnxruntime is fed and
the output it answers with) or its MLflow signature (a tensor per column, or the signature's tensors).

Worked out once per loaded model (kept as long as the scorer lives); a deployment in its own process is asked for
its own metadata once, over HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ONNX_TYPES = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(float16)": "FP16",
    "tensor(int64)": "INT64",
    "tensor(int32)": "INT32",
    "tensor(int16)": "INT16",
    "tensor(int8)": "INT8",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(bool)": "BOOL",
    "tensor(string)": "BYTES",
}
# MLflow's column types (as MLServer's MLflow runtime maps them)
MLFLOW_TYPES = {
    "boolean": "BOOL",
    "integer": "INT32",
    "long": "INT64",
    "float": "FP32",
    "double": "FP64",
    "string": "BYTES",
    "binary": "BYTES",
    "datetime": "BYTES",
}


@dataclass(frozen=True)
class Spec:
    """One input or output tensor of a model's metadata (-1: any size)."""

    name: str
    datatype: str
    shape: list[int]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": self.shape}


@dataclass(frozen=True)
class Description:
    platform: str
    inputs: list[Spec]
    outputs: list[Spec]
    columns: list[str] | None  # the named columns the model takes, when it takes a table


UNKNOWN = Description("", [], [], None)


def describe_scorer(scorer: Any) -> Description:
    """The metadata of a scorer loaded in this process."""
    from jupyter_mlops.deploy.scoring import OnnxScorer, PyfuncScorer

    if isinstance(scorer, OnnxScorer):
        graph_input, graph_output = scorer.input, scorer.session.get_outputs()[0]  # what score() feeds and returns
        return Description(
            "onnxruntime_onnx",
            [_onnx_spec(graph_input)],
            [_onnx_spec(graph_output)],
            list(scorer.columns) if scorer.columns else None,
        )
    if isinstance(scorer, PyfuncScorer):
        metadata = scorer.model.metadata
        inputs = _schema_specs(metadata.get_input_schema(), "input")
        if not inputs and scorer.features:  # no signature: the names a scikit-learn model was fitted with
            inputs = [Spec(name, "FP64", [-1]) for name in scorer.features]
        outputs = _schema_specs(metadata.get_output_schema(), "output")
        if len(outputs) == 1 and outputs[0].name == "output-0":
            outputs = [Spec("predictions", outputs[0].datatype, outputs[0].shape)]  # as /score names them
        columns = scorer.columns or scorer.features
        return Description("mlflow_pyfunc", inputs, outputs, list(columns) if columns else None)
    return Description("python_script", [], [], None)  # a scoring script reads what it likes


def from_metadata(payload: Any) -> Description:
    """A description from a deployment process's own v2 model metadata (``UNKNOWN`` when it makes none)."""
    if not isinstance(payload, dict):
        return UNKNOWN

    def specs(key: str) -> list[Spec]:
        found = payload.get(key)
        if not isinstance(found, list):
            return []
        return [
            Spec(str(s.get("name")), str(s.get("datatype")), [int(d) for d in s.get("shape") or []])
            for s in found
            if isinstance(s, dict)
        ]

    try:
        inputs, outputs = specs("inputs"), specs("outputs")
    except (TypeError, ValueError):
        return UNKNOWN
    columnar = inputs and all(s.shape == [-1] for s in inputs)  # a tensor per column, as for a signature's columns
    return Description(
        str(payload.get("platform", "")), inputs, outputs, [s.name for s in inputs] if columnar else None
    )


def _onnx_spec(node: Any) -> Spec:
    shape = [d if isinstance(d, int) else -1 for d in (node.shape or [])]
    return Spec(node.name, ONNX_TYPES.get(node.type, "BYTES"), shape)


def _schema_specs(schema: Any, prefix: str) -> list[Spec]:
    if schema is None:
        return []
    specs = []
    for index, item in enumerate(schema.inputs):
        name = getattr(item, "name", None) or f"{prefix}-{index}"
        if schema.is_tensor_spec():
            specs.append(Spec(name, _numpy_datatype(item.type), [int(d) for d in item.shape]))
        else:
            kind = getattr(item.type, "name", None)
            specs.append(Spec(name, MLFLOW_TYPES.get(kind, "BYTES") if isinstance(kind, str) else "BYTES", [-1]))
    return specs


def _numpy_datatype(dtype: Any) -> str:
    import numpy as np

    dtype = np.dtype(dtype)
    bits = dtype.itemsize * 8
    return {"b": "BOOL", "i": f"INT{bits}", "u": f"UINT{bits}", "f": f"FP{bits}"}.get(dtype.kind, "BYTES")
