"""The scoring contract: turn a request body into a model's input, and a model folder into something that scores.

Three kinds of model, as in Azure ML:
- an MLflow model needs no script (an ``onnx`` flavour is served by onnxruntime directly: no pandas on the hot
  path);
- a plain ONNX file is served by onnxruntime;
- a custom model comes with ``score.py``: ``init()`` runs once with the model folder in ``MLOPS_MODEL_DIR``,
  ``run(raw_data)`` runs per request with the raw body (a str) and returns something JSON-serialisable.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from jupyter_mlops.exceptions import InvalidInput

MLFLOW_FORMATS = ("dataframe_split", "dataframe_records", "inputs", "instances")


class Scorer:
    """Scores one request body. ``fast`` scorers may run on the event loop (sub-millisecond predictions)."""

    fast = False
    json_body = False  # whether a scored body was proven to be JSON (the collector then embeds it as it is)

    def score(self, body: bytes) -> Any:
        raise NotImplementedError


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"The request body is not valid JSON: {exc}.") from exc


def mlflow_payload(body: bytes) -> tuple[str, Any]:
    """(format, data) of a body in one of MLflow's JSON input formats."""
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise InvalidInput(f"Send a JSON object with one of the keys {', '.join(MLFLOW_FORMATS)}.")
    keys = [k for k in MLFLOW_FORMATS if k in payload]
    if len(keys) != 1:
        raise InvalidInput(
            f"Send a JSON object with exactly one of the keys {', '.join(MLFLOW_FORMATS)}; got {sorted(payload)}."
        )
    return keys[0], payload[keys[0]]


def to_rows(fmt: str, data: Any, columns: list[str] | None) -> tuple[list[list[Any]], list[str] | None]:
    """Rows (lists of values) and the column names they came with, from any of MLflow's formats."""
    if fmt == "dataframe_split":
        if not isinstance(data, dict) or "data" not in data:
            raise InvalidInput('dataframe_split needs {"columns": [...], "data": [[...], ...]}.')
        rows, given = data["data"], data.get("columns")
    elif fmt == "dataframe_records":
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise InvalidInput("dataframe_records needs a list of objects, one per row.")
        given = columns or (list(data[0]) if data else [])
        missing = sorted({c for r in data for c in given if c not in r})
        if missing:
            raise InvalidInput(f"Rows lack the column(s) {', '.join(missing)}; expected {given}.")
        rows = [[r[c] for c in given] for r in data]
    else:
        rows, given = data, None
        if isinstance(rows, dict):
            raise InvalidInput(f"{fmt} with named tensors is not supported here: send a list of rows.")
    if not isinstance(rows, list) or not rows:
        raise InvalidInput("Send at least one row.")
    if not isinstance(rows[0], list):
        rows = [rows]  # a single row
    if columns and given and list(given) != list(columns):
        unknown = sorted(set(given) - set(columns))
        missing = sorted(set(columns) - set(given))
        if unknown or missing:
            raise InvalidInput(
                f"Wrong columns: unknown {unknown or 'none'}, missing {missing or 'none'}; the model expects {columns}."
            )
        index = [list(given).index(c) for c in columns]
        rows = [[row[i] for i in index] for row in rows]
    width = len(columns) if columns else len(rows[0])
    if any(not isinstance(r, list) or len(r) != width for r in rows):
        raise InvalidInput(f"Every row needs {width} values.")
    if given is not None and (
        not isinstance(given, list) or not all(isinstance(c, str) for c in given) or len(given) != width
    ):
        raise InvalidInput(f"columns must list {width} column names (strings), one per value of a row.")
    return rows, columns or given


class OnnxScorer(Scorer):
    """onnxruntime on a float tensor: the fast path (tens of microseconds per row)."""

    fast = True
    json_body = True

    def __init__(self, path: Path, columns: list[str] | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0]
        self.width = self.input.shape[1] if len(self.input.shape) > 1 and isinstance(self.input.shape[1], int) else None
        self.columns = columns
        self.outputs = [o.name for o in self.session.get_outputs()]

    def score(self, body: bytes) -> Any:
        import numpy as np

        fmt, data = mlflow_payload(body)
        rows, _ = to_rows(fmt, data, self.columns)
        if self.width is not None and len(rows[0]) != self.width:
            raise InvalidInput(f"Every row needs {self.width} values; got {len(rows[0])}.")
        try:
            array = np.asarray(rows, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"Every value must be a number: {exc}.") from exc
        result = self.session.run(self.outputs[:1], {self.input.name: array})[0]
        return {"predictions": result.tolist()}


class MicroBatcher:
    """Combines concurrent requests into one call: a model that costs the same for 1 row as for 50 (pandas schema
    work dominates) then serves many requests for the price of one.

    Adaptive: while requests come one at a time a batch closes as soon as no other is on its way in, so a lone
    request never waits; under load (recent batches of several) it gathers for ``max_wait_s`` or ``max_rows``.
    """

    def __init__(self, predict_many: Callable[[list[Any]], list[Any]], max_rows: int = 256, max_wait_s: float = 0.003):
        import queue

        self.predict_many = predict_many
        self.max_rows = max_rows
        self.max_wait_s = max_wait_s
        self._queue: queue.SimpleQueue[tuple[Any, int, Future[Any]]] = queue.SimpleQueue()
        self._arriving = 0
        self._recent = 1.0  # moving average of the batch size: how loaded we are
        self._lock = threading.Lock()
        threading.Thread(target=self._loop, name="mlops-microbatch", daemon=True).start()

    def arriving(self) -> None:
        """A request is being parsed and will be submitted: keep the batch open for it."""
        with self._lock:
            self._arriving += 1

    def submit(self, item: Any, rows: int) -> Any:
        future: Future[Any] = Future()
        with self._lock:
            self._arriving -= 1
        self._queue.put((item, rows, future))
        return future.result()

    def cancel_arrival(self) -> None:
        with self._lock:
            self._arriving -= 1

    def _loop(self) -> None:
        import queue
        import time

        while True:
            batch = [self._queue.get()]
            rows = batch[0][1]
            deadline = time.monotonic() + self.max_wait_s
            while rows < self.max_rows:
                try:
                    batch.append(self._queue.get_nowait())
                    rows += batch[-1][1]
                    continue
                except queue.Empty:
                    pass
                # alone (recent batches of one): go now; under load: gather until the deadline
                if time.monotonic() >= deadline or (self._arriving <= 0 and self._recent < 1.5):
                    break
                time.sleep(0.0002)
            self._recent = 0.8 * self._recent + 0.2 * len(batch)
            self._run(batch)

    def _run(self, batch: list[tuple[Any, int, Future[Any]]]) -> None:
        try:
            results = self.predict_many([item for item, _, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                batch[0][2].set_exception(exc)
                return
            for one in batch:  # isolate the request that fails the batch
                self._run([one])
            return
        for (_, _, future), value in zip(batch, results, strict=True):
            future.set_result(value)


class PyfuncScorer(Scorer):
    """Any MLflow model through ``mlflow.pyfunc`` (schema enforcement included), with micro-batching."""

    json_body = True

    def __init__(self, path: Path, *, max_batch_rows: int = 256, max_wait_s: float = 0.003) -> None:
        import mlflow.pyfunc

        self.model = mlflow.pyfunc.load_model(str(path))
        schema = self.model.metadata.get_input_schema()
        self.columns = schema.input_names() if schema is not None and schema.has_input_names() else None
        # a tensor signature wants an array of its dtype, not a DataFrame
        self.tensor_dtype = schema.numpy_types()[0] if schema is not None and schema.is_tensor_spec() else None
        self.batcher = MicroBatcher(self._predict_many, max_batch_rows, max_wait_s)

    def score(self, body: bytes) -> Any:
        self.batcher.arriving()
        try:
            fmt, data = mlflow_payload(body)
            rows, columns = to_rows(fmt, data, self.columns)
        except BaseException:
            self.batcher.cancel_arrival()
            raise
        return {"predictions": self.batcher.submit((rows, columns), len(rows))}

    def _predict_many(self, items: list[tuple[list[list[Any]], list[str] | None]]) -> list[Any]:
        import pandas as pd

        columns = items[0][1]
        if any(c != columns for _, c in items):
            return [self._predict_many([item])[0] for item in items]
        rows = [row for item_rows, _ in items for row in item_rows]
        if self.tensor_dtype is not None:
            import numpy as np

            try:
                frame = np.asarray(rows, dtype=self.tensor_dtype)
            except (TypeError, ValueError) as exc:
                raise InvalidInput(f"Every value must be a {self.tensor_dtype}: {exc}.") from exc
        else:
            try:
                frame = pd.DataFrame(rows, columns=columns) if columns else pd.DataFrame(rows)
            except (TypeError, ValueError) as exc:
                raise InvalidInput(f"The rows do not make a table: {exc}"[:500]) from exc
        try:
            result = _jsonable(self.model.predict(frame))
        except Exception as exc:
            from mlflow.exceptions import MlflowException

            if isinstance(exc, MlflowException):  # schema enforcement: the caller's input is wrong
                raise InvalidInput(str(exc.message)[:500]) from exc
            if isinstance(exc, (ValueError, TypeError)):  # e.g. text where the model wants numbers
                raise InvalidInput(f"The model refused the input: {exc}"[:500]) from exc
            raise
        if not isinstance(result, list) or len(result) != len(rows):
            if len(items) == 1:
                return [result]
            return [self._predict_many([item])[0] for item in items]
        out, start = [], 0
        for item_rows, _ in items:
            out.append(result[start : start + len(item_rows)])
            start += len(item_rows)
        return out


class ScriptScorer(Scorer):
    """Azure's contract: ``init()`` once, ``run(raw_data)`` per request."""

    _lock = threading.Lock()

    def __init__(self, script: Path, model_dir: Path) -> None:
        if not script.is_file():
            raise InvalidInput(f"The scoring script {script} does not exist.")
        with self._lock:
            os.environ["MLOPS_MODEL_DIR"] = str(model_dir)
            name = f"mlops_score_{abs(hash(str(script)))}"
            spec = importlib.util.spec_from_file_location(name, script)
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            sys.path.insert(0, str(script.parent))  # the script's code folder
            try:
                spec.loader.exec_module(module)
            finally:
                sys.path.remove(str(script.parent))
            for required in ("init", "run"):
                if not callable(getattr(module, required, None)):
                    raise InvalidInput(f"The scoring script {script} must define {required}().")
            module.init()
        self.run: Callable[[str], Any] = module.run

    def score(self, body: bytes) -> Any:
        try:
            raw = body.decode()
        except UnicodeDecodeError as exc:
            raise InvalidInput("The request body is not UTF-8 text.") from exc
        return _jsonable(self.run(raw))


def load_scorer(model_dir: Path, scoring_script: Path | None = None, *, prefer_onnx: bool = True) -> Scorer:
    """The scorer for a downloaded model folder (and optional ``score.py``)."""
    if scoring_script is not None:
        return ScriptScorer(scoring_script, model_dir)
    mlmodel = model_dir / "MLmodel"
    if mlmodel.is_file():
        import yaml

        meta = yaml.safe_load(mlmodel.read_text())
        flavors = meta.get("flavors", {})
        if prefer_onnx and "onnx" in flavors:
            return OnnxScorer(model_dir / flavors["onnx"]["data"], _signature_columns(meta))
        return PyfuncScorer(model_dir)
    onnx_files = sorted(model_dir.glob("*.onnx"))
    if onnx_files:
        return OnnxScorer(onnx_files[0])
    raise InvalidInput(
        f"{model_dir} is neither an MLflow model (no MLmodel file) nor an ONNX model (no .onnx file): "
        "deploy it with a scoring_script (score.py with init() and run())."
    )


def _signature_columns(meta: dict[str, Any]) -> list[str] | None:
    inputs = (meta.get("signature") or {}).get("inputs")
    if not inputs:
        return None
    spec = json.loads(inputs) if isinstance(inputs, str) else inputs
    names = [c.get("name") for c in spec if isinstance(c, dict)]
    return names if names and all(names) else None


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "to_dict"):
        return value.to_dict(orient="records")
    return value
