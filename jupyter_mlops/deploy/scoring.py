"""The scoring contract: turn a request body into a model's input, and a model folder into something that scores.

Three kinds of model, as in Azure ML:
- an MLflow model needs no script (an ``onnx`` flavour is served by onnxruntime directly: no pandas on the hot
  path);
- a plain ONNX file is served by onnxruntime;
- a custom model comes with ``score.py``: ``init()`` runs once with the model folder in ``MLOPS_MODEL_DIR``,
  ``run(raw_data)`` runs per request with the raw body (a str) and returns something JSON-serialisable.

Bad input is the caller's error (``InvalidInput``: a 400), never the server's: JSON nested past the parser's depth,
integers too long to convert, values of the wrong type. An ONNX conversion made by ``convert_to_onnx`` carries its
source model's input contract (``CONTRACT_KEY`` in the ONNX metadata: which columns refuse missing or infinite
values), and the ONNX scorer enforces it, so a value the source model refuses is refused here too.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from jupyter_mlops.exceptions import InvalidInput

MLFLOW_FORMATS = ("dataframe_split", "dataframe_records", "inputs", "instances")
CONTRACT_KEY = "mlops.input_contract"  # ONNX metadata: the source model's refusals, recorded by convert_to_onnx
KINDS = ("missing", "infinite")  # the values an input contract rules on, per column
# the default of urllib and `curl -d` when the caller names no type: JSON sent that way keeps being scored
UNDECLARED_TYPES = ("", "application/x-www-form-urlencoded")


class Scorer:
    """Scores one request body. ``fast`` scorers may run on the event loop (sub-millisecond predictions)."""

    fast = False
    applied = ""  # what the deployment's resources made of it: provider, threads, resident size
    json_body = False  # whether a scored body was proven to be JSON (the collector then embeds it as it is)
    json_only = True  # bodies in another declared Content-Type are refused (415); a scoring script reads any
    takes_payload = False  # whether it scores a payload a protocol already parsed (``score_payload``)
    numbers_as_text = False  # whether that payload's fractional numbers may stay their JSON text (str subclass)

    def score(self, body: bytes) -> Any:
        raise NotImplementedError

    def score_payload(self, payload: Any, booleans: bool = True) -> Any:
        """Scores ``/score``'s JSON payload as parsed (a protocol's translation), under the rules ``score`` applies
        to its body; ``booleans``: whether the values may hold JSON booleans (else they are not looked for)."""
        raise NotImplementedError


def json_content_type(value: str | None) -> bool:
    """Whether a Content-Type header lets the body be read as JSON: ``application/json`` with any parameters (as
    MLflow's ``application/json; format=pandas-split``), ``application/*+json``, or no type declared."""
    mime = (value or "").split(";", 1)[0].strip().lower()
    return (
        mime == "application/json"
        or mime in UNDECLARED_TYPES
        or (mime.startswith("application/") and mime.endswith("+json"))
    )


def parse_json(body: bytes) -> Any:
    """The body's JSON; whatever the parser refuses is the caller's error: broken syntax, text that is not UTF-8,
    nesting deeper than the interpreter's recursion limit, an integer longer than Python converts (4,300 digits)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        reason = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise InvalidInput(f"The request body is not valid JSON: {reason}."[:500]) from exc


def mlflow_payload(body: bytes) -> tuple[str, Any]:
    """(format, data) of a body in one of MLflow's JSON input formats."""
    return mlflow_format(parse_json(body))


def mlflow_format(payload: Any) -> tuple[str, Any]:
    """(format, data) of a parsed payload in one of MLflow's JSON input formats."""
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
    if given is not None and (  # checked before it is used: a name that is not a string cannot be looked up
        not isinstance(given, list) or not all(isinstance(c, str) for c in given) or len(given) != len(rows[0])
    ):
        raise InvalidInput(f"columns must list {len(rows[0])} column names (strings), one per value of a row.")
    if columns and given and given != list(columns):
        unknown = sorted(set(given) - set(columns))
        missing = sorted(set(columns) - set(given))
        if unknown or missing:
            raise InvalidInput(
                f"Wrong columns: unknown {unknown or 'none'}, missing {missing or 'none'}; the model expects {columns}."
            )
        if any(not isinstance(r, list) or len(r) != len(given) for r in rows):
            raise InvalidInput(f"Every row needs {len(given)} values.")
        index = [given.index(c) for c in columns]
        rows = [[row[i] for i in index] for row in rows]
    width = len(columns) if columns else len(rows[0])
    if any(not isinstance(r, list) or len(r) != width for r in rows):
        raise InvalidInput(f"Every row needs {width} values.")
    return rows, columns or given


class OnnxScorer(Scorer):
    """onnxruntime on a float tensor: the fast path (tens of microseconds per row).

    A JSON boolean is refused as a number (MLflow's schema enforcement refuses it in a numeric column too). When
    the model carries its source's input contract (``CONTRACT_KEY``), missing (NaN, null) and infinite values
    (``Infinity``, ``1e400``, or a number beyond 32-bit floats) are refused in the columns the contract names, with
    a 400 naming the column; without one (an ONNX file registered as it is) they are scored as they come."""

    fast = True
    json_body = True
    takes_payload = True

    def __init__(
        self, path: Path, columns: list[str] | None = None, *, threads: int = 1, provider: str = "CPUExecutionProvider"
    ) -> None:
        import numpy as np
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads  # the deployment's cpu (1 without one: requests are the parallelism)
        if threads > 1:  # idle intra-op threads that spin take the core the event loop and the other requests need
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = [provider, "CPUExecutionProvider"] if provider != "CPUExecutionProvider" else [provider]
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.provider = self.session.get_providers()[0]
        if self.provider != provider:  # onnxruntime falls back to the CPU silently: a GPU asked for is not a CPU
            raise InvalidInput(
                f"onnxruntime could not start {provider} (it runs on {self.provider}): check the CUDA and cuDNN "
                "libraries onnxruntime-gpu needs, or deploy with gpu='prefer' to accept the CPU."
            )
        self.threads = threads
        self.input = self.session.get_inputs()[0]
        self.width = self.input.shape[1] if len(self.input.shape) > 1 and isinstance(self.input.shape[1], int) else None
        self.dtype = {"tensor(double)": np.float64, "tensor(int64)": np.int64, "tensor(int32)": np.int32}.get(
            self.input.type, np.float32
        )
        # numpy reads a float input's numbers from their JSON text at C speed (an integer input truncates floats)
        self.numbers_as_text = np.dtype(self.dtype).kind == "f"
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.contract = input_contract(self.session)
        # a number too large for a 32-bit input becomes infinity (which the contract judges), not a warning; for
        # this module's casts only, and set here, in the process that serves, rather than at import
        warnings.filterwarnings("ignore", "overflow encountered in cast", RuntimeWarning, __name__)
        self.columns = columns or (self.contract.columns if self.contract else None)

    def score(self, body: bytes) -> Any:
        fmt, data = mlflow_payload(body)
        return self._score(fmt, data, b"true" in body or b"false" in body)

    def score_payload(self, payload: Any, booleans: bool = True) -> Any:
        fmt, data = mlflow_format(payload)
        return self._score(fmt, data, booleans)

    def _score(self, fmt: str, data: Any, booleans: bool) -> Any:
        import numpy as np

        rows, _ = to_rows(fmt, data, self.columns)
        if self.width is not None and len(rows[0]) != self.width:
            raise InvalidInput(f"Every row needs {self.width} values; got {len(rows[0])}.")
        try:
            array = np.asarray(rows, dtype=self.dtype)
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidInput(f"Every value must be a number: {exc}."[:500]) from exc
        if array.ndim != 2:
            raise InvalidInput("Every value must be a number, not a list.")
        if booleans and (column := _boolean_column(rows)) is not None:
            raise InvalidInput(f"{self._column(column)} holds a boolean where the model takes a number.")
        if self.contract is not None and array.dtype.kind == "f" and not np.isfinite(array).all():
            self.contract.check(array, self.columns)
        try:
            result = self.session.run(self.outputs[:1], {self.input.name: array})[0]
        except Exception as exc:
            from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

            if isinstance(exc, InvalidArgument):  # a shape or type the graph does not take: the caller's input
                raise InvalidInput(f"The model refused the input: {exc}"[:500]) from exc
            raise
        return {"predictions": result.tolist()}

    def _column(self, index: int) -> str:
        return column_name(index, self.columns)


class InputContract:
    """What an ONNX conversion's source model refuses, per column (recorded by ``convert_to_onnx``)."""

    def __init__(self, recorded: dict[str, Any]) -> None:
        self.columns: list[str] | None = recorded.get("columns")
        refuses = recorded.get("refuses", {})  # {kind: {column index: why}}
        self.refused = {kind: {int(c): why for c, why in refuses.get(kind, {}).items()} for kind in KINDS}

    def check(self, array: Any, columns: list[str] | None = None) -> None:
        """Called when ``array`` holds a value that is not finite: a 400 naming the first column holding one the
        source model refuses."""
        import numpy as np

        for kind, found, what in (
            ("missing", np.isnan(array), "a missing value (NaN or null)"),
            ("infinite", np.isinf(array), "an infinite value (or one beyond 32-bit floats)"),
        ):
            for column in np.flatnonzero(found.any(axis=0)).tolist():
                if column in self.refused[kind]:
                    name = column_name(column, columns or self.columns)
                    raise InvalidInput(f"{name} holds {what}: {self.refused[kind][column]}.")


def input_contract(session: Any) -> InputContract | None:
    """The input contract in an onnxruntime session's model metadata, if its conversion recorded one."""
    recorded = session.get_modelmeta().custom_metadata_map.get(CONTRACT_KEY)
    return InputContract(json.loads(recorded)) if recorded else None


def column_name(index: int, names: list[str] | None) -> str:
    return f"Column {names[index]!r}" if names and index < len(names) else f"Column {index}"


def _boolean_column(rows: list[list[Any]]) -> int | None:
    for row in rows:
        for index, value in enumerate(row):
            if value is True or value is False:
                return index
    return None


class MicroBatcher:
    """Combines concurrent requests into one call: a model that costs the same for 1 row as for 50 (pandas schema
    work dominates) then serves many requests for the price of one.

    Adaptive: while requests come one at a time a batch closes as soon as no other is on its way in, so a lone
    request never waits; under load (recent batches of several) it gathers for ``max_wait_s`` or ``max_rows``.
    """

    def __init__(
        self,
        predict_many: Callable[[list[Any]], list[Any]],
        max_rows: int = 256,
        max_wait_s: float = 0.003,
        threads: int = 1,
    ):
        import queue

        self.predict_many = predict_many
        self.max_rows = max_rows
        self.max_wait_s = max_wait_s
        self._queue: queue.SimpleQueue[tuple[Any, int, Future[Any]]] = queue.SimpleQueue()
        self._arriving = 0
        self._recent = 1.0  # moving average of the batch size: how loaded we are
        self._lock = threading.Lock()
        self.threads = threads  # the deployment's cpu: batches predicted at once (models release the GIL)
        for index in range(threads):
            threading.Thread(target=self._loop, name=f"mlops-microbatch-{index}", daemon=True).start()

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
    """Any MLflow model through ``mlflow.pyfunc`` (schema enforcement included), with micro-batching.

    A scikit-learn model gets its table as it was fitted: with its feature names (rows sent without names get
    them), or without names when it was fitted on an array, so it never warns about feature names per request."""

    json_body = True
    takes_payload = True

    def __init__(self, path: Path, *, max_batch_rows: int = 256, max_wait_s: float = 0.003, threads: int = 1) -> None:
        import mlflow.pyfunc

        self.model = mlflow.pyfunc.load_model(str(path))
        schema = self.model.metadata.get_input_schema()
        self.columns = schema.input_names() if schema is not None and schema.has_input_names() else None
        # a tensor signature wants an array of its dtype, not a DataFrame
        self.tensor_dtype = schema.numpy_types()[0] if schema is not None and schema.is_tensor_spec() else None
        self.features, self.unnamed = sklearn_features(self.model)
        self.batcher = MicroBatcher(self._predict_many, max_batch_rows, max_wait_s, threads)

    def score(self, body: bytes) -> Any:
        return self._submit(mlflow_payload, body)

    def score_payload(self, payload: Any, booleans: bool = True) -> Any:
        return self._submit(mlflow_format, payload)

    def _submit(self, read: Callable[[Any], tuple[str, Any]], given: Any) -> Any:
        self.batcher.arriving()
        try:
            fmt, data = read(given)
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
            except (TypeError, ValueError, OverflowError) as exc:
                raise InvalidInput(f"Every value must be a {self.tensor_dtype}: {exc}.") from exc
        else:
            if not columns and self.features and len(rows[0]) == len(self.features):
                columns = self.features  # positional rows: the names the model was fitted with
            elif self.unnamed and not self.columns:
                columns = None  # fitted on an array: names would only draw a warning
            try:
                frame = pd.DataFrame(rows, columns=columns) if columns else pd.DataFrame(rows)
            except (TypeError, ValueError, OverflowError) as exc:
                raise InvalidInput(f"The rows do not make a table: {exc}"[:500]) from exc
        try:
            result = _jsonable(self.model.predict(frame))
        except Exception as exc:
            from mlflow.exceptions import MlflowException

            if isinstance(exc, MlflowException):  # schema enforcement: the caller's input is wrong
                raise InvalidInput(str(exc.message)[:500]) from exc
            # text where the model wants numbers, an integer no float holds, lists nested where values go
            if isinstance(exc, (ValueError, TypeError, OverflowError, RecursionError)):
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
    """Azure's contract: ``init()`` once, ``run(raw_data)`` per request; the script reads the body in whatever
    format it takes (any Content-Type)."""

    json_only = False
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


def load_scorer(
    model_dir: Path,
    scoring_script: Path | None = None,
    *,
    prefer_onnx: bool = True,
    resources: Mapping[str, Any] | None = None,
) -> Scorer:
    """The scorer for a downloaded model folder (and optional ``score.py``), under the deployment's ``resources``
    (``deploy/resources.py``'s serving dict: threads, provider, memory). In the endpoint's workers the router passes
    them and the loaded model's resident size is checked against the memory limit; a process of its own has them
    from its launcher (``MLOPS_RESOURCES``) and its memory is limited by the system, so a memory error there ends
    the process (``MEMORY_EXIT_CODE``) for its supervisor to restart, as a container's OOM kill does."""
    from jupyter_mlops.deploy import resources as limits

    own_process = resources is None
    config = limits.from_env() if own_process else resources
    threads = int((config or {}).get("threads") or 1)
    provider = str((config or {}).get("provider") or "CPUExecutionProvider")
    before = limits.resident_bytes()
    with _env_lock:
        device = (config or {}).get("env", {}).get(limits.DEVICE_ENV)
        if device:  # what a scoring script or a pyfunc model reads to pick its device
            os.environ[limits.DEVICE_ENV] = device
        scorer = _load(model_dir, scoring_script, prefer_onnx, threads, provider)
    grew = limits.resident_bytes() - before
    if own_process:
        size = ""
        if config and config.get("memory_bytes"):
            scorer.score = _ending_on_memory_error(scorer.score, config)  # type: ignore[method-assign]
            scorer.score_payload = _ending_on_memory_error(scorer.score_payload, config)  # type: ignore[method-assign]
    else:
        size = limits.check_loaded(config, grew, limits.model_bytes(model_dir))
    where = getattr(scorer, "provider", None) or ("cuda" if str(device or "").startswith("cuda") else "cpu")
    parts = [f"on {where}"]
    if isinstance(scorer, OnnxScorer):
        parts.append(f"{scorer.threads} onnxruntime intra-op thread(s)")
    elif isinstance(scorer, PyfuncScorer):
        parts.append(f"{scorer.batcher.threads} micro-batching thread(s)")
    if size:
        parts.append(f"resident {size}" + (f" of {config['memory']}" if config and "memory" in config else ""))
    scorer.applied = ", ".join(parts)
    return scorer


_env_lock = threading.Lock()


def _load(model_dir: Path, scoring_script: Path | None, prefer_onnx: bool, threads: int, provider: str) -> Scorer:
    if scoring_script is not None:
        return ScriptScorer(scoring_script, model_dir)
    mlmodel = model_dir / "MLmodel"
    if mlmodel.is_file():
        import yaml

        meta = yaml.safe_load(mlmodel.read_text())
        flavors = meta.get("flavors", {})
        if prefer_onnx and "onnx" in flavors:
            path = model_dir / flavors["onnx"]["data"]
            return OnnxScorer(path, _signature_columns(meta), threads=threads, provider=_onnx(provider))
        return PyfuncScorer(model_dir, threads=threads)
    onnx_files = sorted(model_dir.glob("*.onnx"))
    if onnx_files:
        return OnnxScorer(onnx_files[0], threads=threads, provider=_onnx(provider))
    raise InvalidInput(
        f"{model_dir} is neither an MLflow model (no MLmodel file) nor an ONNX model (no .onnx file): "
        "deploy it with a scoring_script (score.py with init() and run())."
    )


def _onnx(provider: str) -> str:
    """The onnxruntime provider of a placement made for another kind of model ("cuda": the CUDA provider)."""
    return {"cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}.get(provider, provider)


def _ending_on_memory_error(score: Callable[..., Any], config: Mapping[str, Any]) -> Callable[..., Any]:
    """``score`` in a process under a memory limit: a MemoryError there says the limit is reached, and the process
    ends with ``MEMORY_EXIT_CODE`` (its supervisor restarts it and says why) rather than limping on."""
    from jupyter_mlops.deploy.resources import MEMORY_EXCEEDED, MEMORY_EXIT_CODE

    def guarded(*args: Any) -> Any:
        try:
            return score(*args)
        except MemoryError:
            sys.stderr.write(f"MemoryError: the deployment {MEMORY_EXCEEDED} ({config.get('memory')}): exiting\n")
            sys.stderr.flush()
            os._exit(MEMORY_EXIT_CODE)

    return guarded


def sklearn_features(model: Any) -> tuple[list[str] | None, bool]:
    """(feature names, fitted without names) of the scikit-learn model inside a pyfunc; (None, False) for others."""
    try:
        raw = model.get_raw_model()
    except Exception:  # not every flavour exposes its model
        return None, False
    if not hasattr(raw, "n_features_in_") or not hasattr(raw, "predict"):
        return None, False
    names = getattr(raw, "feature_names_in_", None)
    return ([str(n) for n in names], False) if names is not None else (None, True)


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
