"""Open Inference Protocol v2 tensors: a request's input tensors to the rows ``/score`` takes, a model's predictions
to output tensors, in JSON (row-major ``data``, flat or nested) or in the binary tensor extension.

The binary extension (Triton's ``binary_tensor_data``, what ``tritonclient`` sends by default): the request body is
the JSON header (``Inference-Header-Content-Length`` bytes) followed by each input whose ``parameters`` give a
``binary_data_size``, in order; little-endian values, BYTES elements each preceded by their length as 4 bytes.
Outputs asked for with ``"binary_data": true`` (or all, with the request's ``"binary_data_output": true``) come back
the same way.
"""

from __future__ import annotations

import functools
import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any

from jupyter_mlops.exceptions import InvalidInput

HEADER_LENGTH = "inference-header-content-length"
# datatype -> numpy dtype (little-endian) of its binary form
NUMPY = {
    "BOOL": "bool",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
    "BYTES": "object",
}
INTEGERS = {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
FLOATS = {"FP16", "FP32", "FP64"}


class RawFloat(str):
    """A JSON number with a fraction or an exponent, kept as its text: written into ``/score``'s body as it came,
    since formatting floats back into JSON costs more than the rest of the translation."""

    __slots__ = ()


DECODER = json.JSONDecoder(parse_float=RawFloat)  # built once: json.loads with an argument builds one per call
FLOAT_DECODER = json.JSONDecoder()


def _parse(body: bytes, raw_floats: bool) -> Any:
    """The body's JSON, numbers with a fraction kept as ``RawFloat`` when ``raw_floats`` (the body will be written
    again), else floats; what the parser refuses is the caller's error (as ``scoring.parse_json``)."""
    try:
        return (DECODER if raw_floats else FLOAT_DECODER).decode(body.decode())
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        reason = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise InvalidInput(f"The request body is not valid JSON: {reason}."[:500]) from exc


@dataclass
class Tensor:
    """One tensor: its values flat in row-major order."""

    name: str
    datatype: str
    shape: list[int]
    data: list[Any]
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class InferRequest:
    id: str | None
    parameters: dict[str, Any]
    inputs: list[Tensor]
    outputs: list[dict[str, Any]] | None  # the outputs asked for, as sent


def read_request(body: bytes, header_length: str | None, *, raw_floats: bool = True) -> InferRequest:
    """The request in ``body``; with ``header_length`` (the binary extension), its JSON header and binary inputs.
    Whatever does not follow the protocol is an ``InvalidInput`` naming the tensor and the fix. ``raw_floats``:
    fractional numbers are kept as their text (``RawFloat``), for a ``to_body`` to write as they came; else they
    are floats, for a scorer to take the ``to_payload`` as it is."""
    blobs = b""
    if header_length is not None:
        if not header_length.isdigit() or not 0 < int(header_length) <= len(body):
            raise InvalidInput(
                f"Inference-Header-Content-Length is {header_length!r}: it must be the length in bytes of the "
                f"JSON header at the start of the body ({len(body)} bytes)."
            )
        body, blobs = body[: int(header_length)], body[int(header_length) :]
    payload = _parse(body, raw_floats)
    if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), list) or not payload["inputs"]:
        raise InvalidInput('Send {"inputs": [{"name": ..., "datatype": ..., "shape": [...], "data": [...]}, ...]}.')
    parameters = payload.get("parameters") or {}
    outputs = payload.get("outputs")
    if not isinstance(parameters, dict):
        raise InvalidInput("parameters must be a JSON object.")
    if outputs is not None and (
        not isinstance(outputs, list)
        or not all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs)
    ):
        raise InvalidInput('outputs must list objects with a name: [{"name": ...}, ...].')
    request_id = payload.get("id")
    offset = 0
    inputs = []
    for index, raw in enumerate(payload["inputs"]):
        tensor, used = _tensor(raw, index, blobs[offset:])
        offset += used
        inputs.append(tensor)
    if offset != len(blobs):
        raise InvalidInput(
            f"The body holds {len(blobs) - offset} bytes after the binary inputs: give each binary input its "
            "binary_data_size."
        )
    return InferRequest(str(request_id)[:128] if request_id is not None else None, parameters, inputs, outputs)


def _tensor(raw: Any, index: int, blobs: bytes) -> tuple[Tensor, int]:
    """One input tensor, and how many bytes of ``blobs`` its binary data took."""
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise InvalidInput(f"Input {index} must be an object with a name, a datatype, a shape and data.")
    name, datatype, shape = raw["name"], raw.get("datatype"), raw.get("shape")
    if datatype not in NUMPY:
        raise InvalidInput(f"Input {name!r} has datatype {datatype!r}; use one of {', '.join(NUMPY)}.")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise InvalidInput(f"Input {name!r} needs a shape: a list of sizes (non-negative integers).")
    parameters = raw.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidInput(f"The parameters of input {name!r} must be a JSON object.")
    count = math.prod(shape)
    size = parameters.get("binary_data_size")
    if size is not None:
        if type(size) is not int or not 0 <= size <= len(blobs):
            raise InvalidInput(
                f"Input {name!r} has binary_data_size {size!r}, but {len(blobs)} bytes of binary data are left."
            )
        return Tensor(name, datatype, shape, _from_binary(blobs[:size], datatype, count, name), parameters), size
    if "data" not in raw:
        raise InvalidInput(f"Input {name!r} has no data (nor a binary_data_size).")
    data = _flat(raw["data"], len(shape), name)
    if len(data) != count:
        raise InvalidInput(f"Input {name!r} has shape {shape} ({count} values) but {len(data)} values in data.")
    _check_values(data, datatype, name)
    return Tensor(name, datatype, shape, data, parameters), 0


def _flat(data: Any, dims: int, name: str) -> list[Any]:
    """``data`` flat in row-major order (it may come nested along the shape)."""
    if not isinstance(data, list):
        data = [data]
    depth = 0
    while data and isinstance(data[0], list):
        if not all(isinstance(v, list) for v in data) or depth >= max(dims - 1, 0):
            raise InvalidInput(f"The data of input {name!r} is nested unevenly or deeper than its shape.")
        data = [x for v in data for x in v]
        depth += 1
    return data


ALLOWED = {"BOOL": ({bool}, "true or false"), "BYTES": ({str}, "strings")}
ALLOWED |= {datatype: ({int}, "integers") for datatype in INTEGERS}
ALLOWED |= {datatype: ({int, float, RawFloat}, "numbers") for datatype in FLOATS}


def _check_values(data: list[Any], datatype: str, name: str) -> None:
    allowed, want = ALLOWED[datatype]
    if not set(map(type, data)) <= allowed:  # type(), not isinstance: a JSON boolean is no number
        wrong = next(v for v in data if type(v) not in allowed)
        raise InvalidInput(f"Input {name!r} is {datatype}: its data must be {want}, not {json.dumps(wrong)[:40]}.")


def _from_binary(blob: bytes, datatype: str, count: int, name: str) -> list[Any]:
    import numpy as np

    if datatype == "BYTES":
        values, offset = [], 0
        while offset < len(blob):
            if offset + 4 > len(blob):
                raise InvalidInput(f"The binary data of input {name!r} ends inside an element's length.")
            (length,) = struct.unpack_from("<I", blob, offset)
            offset += 4
            if offset + length > len(blob):
                raise InvalidInput(f"The binary data of input {name!r} ends inside an element.")
            try:
                values.append(blob[offset : offset + length].decode())
            except UnicodeDecodeError as exc:
                raise InvalidInput(f"Input {name!r} holds an element that is not UTF-8 text.") from exc
            offset += length
    else:
        dtype = np.dtype(NUMPY[datatype])
        if len(blob) % dtype.itemsize:
            raise InvalidInput(f"Input {name!r}: {len(blob)} bytes is not a whole number of {datatype} values.")
        array = np.frombuffer(blob, dtype="<u1" if datatype == "BOOL" else dtype)
        values = (array != 0).tolist() if datatype == "BOOL" else array.tolist()
    if len(values) != count:
        raise InvalidInput(f"Input {name!r} has {count} values by its shape but {len(values)} in its binary data.")
    return values


def to_body(inputs: list[Tensor], columns: list[str] | None) -> bytes:
    """The ``/score`` body for these inputs (``to_payload`` written as JSON, a ``RawFloat`` as it came)."""
    return encode(to_payload(inputs, columns))


def encode(payload: dict[str, Any]) -> bytes:
    """A ``to_payload`` as JSON."""
    return _dump(payload).encode()


def to_payload(inputs: list[Tensor], columns: list[str] | None) -> dict[str, Any]:
    """The ``/score`` payload for these inputs. One tensor of two or more dimensions is rows
    (``[rows, values...]``); one of one dimension is one row, unless it is a column the model takes; several
    tensors are columns, each of shape ``[rows]`` or ``[rows, 1]``, named as the model's columns."""
    if len(inputs) == 1:
        tensor = inputs[0]
        column = columns is not None and (tensor.name in columns or len(columns) == 1) and _is_column(tensor.shape)
        if column and columns is not None and tensor.name not in columns:
            return {"inputs": [[v] for v in tensor.data]}
        if not column:
            if len(tensor.shape) >= 2:
                return {"inputs": _nest(tensor.data, tensor.shape)}
            return {"inputs": [tensor.data]}
    for tensor in inputs:
        if not _is_column(tensor.shape):
            raise InvalidInput(
                f"Input {tensor.name!r} has shape {tensor.shape}: with several inputs, each is a column of shape "
                "[rows] or [rows, 1]; or send one input of shape [rows, columns]."
            )
    rows = {t.shape[0] for t in inputs}
    if len(rows) != 1:
        raise InvalidInput(f"The inputs have different numbers of rows: {sorted(rows)}; every column needs each row.")
    names = [t.name for t in inputs]
    if len(set(names)) != len(names):
        raise InvalidInput(f"Two inputs have the same name: {names}.")
    if columns and names != columns and set(names) == set(columns):  # in the model's order
        inputs = sorted(inputs, key=lambda t: columns.index(t.name))
        names = list(columns)
    data = [list(row) for row in zip(*(t.data for t in inputs), strict=True)]
    return {"dataframe_split": {"columns": names, "data": data}}


def _dump(value: Any) -> str:
    """JSON of nested lists and objects of values, a ``RawFloat`` written as it came."""
    if type(value) is dict:
        return "{" + ", ".join(f"{json.dumps(key)}: {_dump(item)}" for key, item in value.items()) + "}"
    if type(value) is not list:
        return value if type(value) is RawFloat else json.dumps(value)
    kinds = set(map(type, value))
    if kinds == {RawFloat}:  # the common case, at C speed
        return "[" + ", ".join(value) + "]"
    if RawFloat not in kinds and list not in kinds and dict not in kinds:
        return json.dumps(value)
    return "[" + ", ".join(map(_dump, value)) + "]"


def _is_column(shape: list[int]) -> bool:
    return len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)


def _nest(flat: list[Any], shape: list[int]) -> list[Any]:
    """``flat`` nested along ``shape`` (row-major)."""
    nested: list[Any] = flat
    for size in reversed(shape[1:]):
        nested = [nested[i : i + size] for i in range(0, len(nested), size)] if size else []
    return nested


def to_outputs(predictions: Any, described: list[Any]) -> list[Tensor]:
    """Output tensors of a model's predictions (``/score``'s ``predictions``): one per column of a table (rows of
    objects, or an object of columns), else one, named and typed as the model describes its outputs."""
    by_name = {spec.name: spec for spec in described}
    if isinstance(predictions, dict):
        return [_output(str(k), v, by_name.get(str(k))) for k, v in predictions.items()]
    if isinstance(predictions, list) and predictions and all(isinstance(r, dict) for r in predictions):
        keys = list(dict.fromkeys(k for r in predictions for k in r))
        return [_output(str(k), [r.get(k) for r in predictions], by_name.get(str(k))) for k in keys]
    spec = described[0] if len(described) == 1 else None
    return [_output(spec.name if spec else "predictions", predictions, spec)]


def _output(name: str, values: Any, spec: Any) -> Tensor:
    if not isinstance(values, list):
        values = [values]
    shape, probe = [], values
    while isinstance(probe, list):
        shape.append(len(probe))
        probe = probe[0] if probe else None
    flat = values
    for _ in shape[1:]:
        if not all(isinstance(v, list) for v in flat):
            break
        flat = [x for v in flat for x in v]
    if len(flat) != math.prod(shape) or any(isinstance(v, (list, dict)) for v in flat):  # ragged or nested
        return Tensor(name, "BYTES", [len(values)], [v if isinstance(v, str) else json.dumps(v) for v in values])
    return Tensor(name, _datatype(flat, spec.datatype if spec else None), shape, flat)


def _datatype(values: list[Any], described: str | None) -> str:
    return _datatype_of(frozenset(map(type, values)), described)


@functools.lru_cache(maxsize=64)
def _datatype_of(kinds: frozenset[type], described: str | None) -> str:
    if not kinds:
        return described or "FP64"
    if kinds == {bool}:
        return "BOOL"
    if kinds == {int}:
        return described if described in INTEGERS else "INT64"
    if kinds <= {int, float, type(None)}:
        return described if described in FLOATS else "FP64"
    if kinds == {str}:
        return "BYTES"
    return "BYTES"


def write_response(
    model: str, version: str | None, request: InferRequest, outputs: list[Tensor]
) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of the answer: the outputs asked for (all when none are), binary where asked."""
    chosen: list[tuple[Tensor, bool]] = []
    binary_all = request.parameters.get("binary_data_output") is True
    if request.outputs is None:
        chosen = [(t, binary_all) for t in outputs]
    else:
        by_name = {t.name: t for t in outputs}
        for asked in request.outputs:
            if asked["name"] not in by_name:
                raise InvalidInput(f"No output named {asked['name']!r}; the model's outputs: {', '.join(by_name)}.")
            wanted = (asked.get("parameters") or {}).get("binary_data")
            chosen.append((by_name[asked["name"]], binary_all if wanted is None else wanted is True))
    answer: dict[str, Any] = {"model_name": model}
    if version is not None:
        answer["model_version"] = version
    if request.id is not None:
        answer["id"] = request.id
    blobs, entries = [], []
    for tensor, binary in chosen:
        entry: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": tensor.shape}
        if binary:
            blob = _to_binary(tensor)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = tensor.data
        entries.append(entry)
    answer["outputs"] = entries
    header = json.dumps(answer).encode()
    if not blobs:
        return header, {"content-type": "application/json"}
    return b"".join([header, *blobs]), {
        "content-type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(header)),
    }


SCALARS = {frozenset(kinds) for kinds in ({int}, {float}, {int, float}, {bool}, {str})}
PREFIX = '{"predictions": '


def flat_response(
    model: str, version: str | None, request: InferRequest, predictions: Any, text: str, described: list[Any]
) -> bytes | None:
    """The common answer, written without building tensors: one flat list of predictions, in JSON, all outputs
    asked for; its ``data`` is the model's answer ``text`` as it was written. None when another shape is due."""
    if request.outputs is not None or request.parameters.get("binary_data_output") is True:
        return None
    if type(predictions) is not list or not predictions or not text.startswith(PREFIX):
        return None
    kinds = frozenset(map(type, predictions))
    if kinds not in SCALARS:
        return None
    spec = described[0] if len(described) == 1 else None
    head = _head(model, version)
    if request.id is not None:
        head += f', "id": {json.dumps(request.id)}'
    tensor = _tensor_head(spec.name if spec else "predictions", _datatype_of(kinds, spec.datatype if spec else None))
    return f'{head}, "outputs": [{tensor}[{len(predictions)}], "data": {text[len(PREFIX) : -1]}}}]}}'.encode()


@functools.lru_cache(maxsize=256)
def _head(model: str, version: str | None) -> str:
    """An answer's start, the same for every answer of a model version: written once."""
    head = f'{{"model_name": {json.dumps(model)}'
    return head if version is None else f'{head}, "model_version": {json.dumps(version)}'


@functools.lru_cache(maxsize=256)
def _tensor_head(name: str, datatype: str) -> str:
    return f'{{"name": {json.dumps(name)}, "datatype": "{datatype}", "shape": '


def _to_binary(tensor: Tensor) -> bytes:
    import numpy as np

    if tensor.datatype == "BYTES":
        encoded = [(v if isinstance(v, str) else json.dumps(v)).encode() for v in tensor.data]
        return b"".join(struct.pack("<I", len(e)) + e for e in encoded)
    values = [math.nan if v is None else v for v in tensor.data]
    return np.asarray(values, dtype=NUMPY[tensor.datatype]).tobytes()
