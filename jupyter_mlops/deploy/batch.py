"""Batch endpoints: score folders of CSV/Parquet files in mini-batches with worker processes, as Azure ML does.

A mini-batch is at most ``mini_batch_size`` files, fewer when that keeps all ``max_concurrency`` workers busy (10
files in 2 mini-batches of 5, not 1 of 10). Each one is scored in a worker process (the model loads once per
process), retried up to ``retries`` times, then counted against ``error_threshold`` (-1: never abort). Finished
mini-batches are written as parts in the invocation's folder, so re-invoking after a crash skips them.
``output_action="append_row"`` writes ``predictions.csv`` with the source file and row of each prediction;
``"summary_only"`` only counts. A scoring script's ``run(mini_batch)`` receives the file paths and returns rows
(a DataFrame or a list). Each invocation is an MLflow run with its counts. Without a scoring script, a proven
ONNX conversion of the model (``convert_to_onnx``) is scored in its place, as online endpoints do (``onnx=False``
opts out), under its source model's input contract: a file holding a value the source refuses fails its
mini-batch, as the source model would. A scikit-learn model gets each file as it was fitted (with its feature
names, or without names when fitted on an array), so it warns about nothing per mini-batch.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from jupyter_mlops.exceptions import Conflict, EndpointError, InvalidInput, NotFound
from jupyter_mlops.names import check_name
from jupyter_mlops.records import Record
from jupyter_mlops.refs import ModelRef

if TYPE_CHECKING:
    from jupyter_mlops.workspace import Workspace

SUFFIXES = (".csv", ".parquet")


@dataclass(frozen=True)
class BatchEndpoint(Record):
    name: str
    model: str
    scoring_script: str | None
    mini_batch_size: int
    max_concurrency: int
    output_action: str
    error_threshold: int
    retries: int
    timeout: float
    created_at: datetime | None
    onnx: bool = True  # score a proven ONNX conversion of the model when there is one
    resources: dict[str, Any] | None = None  # per worker: {"cpu": 1, "memory": "1Gi", "gpu": 0}
    provider: str | None = None  # where its workers infer (resources.place)


@dataclass(frozen=True)
class BatchResult(Record):
    endpoint: str
    run_id: str
    status: str  # succeeded | failed
    files: int
    mini_batches: int
    skipped_mini_batches: int  # finished by an earlier invocation
    failed_mini_batches: int
    rows: int
    duration_s: float
    output: str | None
    table_columns: ClassVar[tuple[str, ...]] = ("endpoint", "status", "files", "rows", "failed_mini_batches", "output")


class BatchEndpoints:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def create(
        self,
        name: str,
        model: str,
        *,
        scoring_script: str | os.PathLike[str] | None = None,
        mini_batch_size: int = 10,
        max_concurrency: int = 2,
        output_action: str = "append_row",
        error_threshold: int = -1,
        retries: int = 3,
        timeout: float = 30,
        onnx: bool = True,
        resources: Mapping[str, Any] | None = None,
    ) -> BatchEndpoint:
        """A batch endpoint of ``model``; ``resources`` are each worker's (its cores and onnxruntime threads, its
        address-space limit, its device), checked now as a deployment's are."""
        from sqlalchemy.exc import IntegrityError

        from jupyter_mlops.deploy import resources as limits
        from jupyter_mlops.store.endpoints import BatchEndpointRecord

        check_name(name, "batch endpoint")
        ref = ModelRef.parse(model)
        self.ws.models.get(ref.name, ref.selector)  # exists now (resolved again at each invocation)
        if output_action not in ("append_row", "summary_only"):
            raise InvalidInput(f"output_action is 'append_row' or 'summary_only', not {output_action!r}.")
        if mini_batch_size < 1 or max_concurrency < 1 or retries < 0 or timeout <= 0 or error_threshold < -1:
            raise InvalidInput(
                "mini_batch_size and max_concurrency are at least 1, retries at least 0, timeout positive, "
                "error_threshold -1 (never abort) or more."
            )
        script = str(Path(scoring_script).resolve()) if scoring_script else None
        if script and not Path(script).is_file():
            raise InvalidInput(f"The scoring script {script} does not exist.")
        asked = limits.parse(resources)
        placement, _ = _plan(asked, onnx=onnx and not script)
        options = {
            "resources": asked.asked(),
            "provider": placement.provider,
            "mini_batch_size": mini_batch_size,
            "max_concurrency": max_concurrency,
            "output_action": output_action,
            "error_threshold": error_threshold,
            "retries": retries,
            "timeout": timeout,
            "onnx": onnx,
        }
        try:
            with self.ws.store.session() as session:
                session.add(
                    BatchEndpointRecord(name=name, model=model, scoring_script=script, options=json.dumps(options))
                )
        except IntegrityError as exc:
            raise Conflict(f"A batch endpoint named {name!r} exists; delete it first or choose another name.") from exc
        return self.get(name)

    def get(self, name: str) -> BatchEndpoint:
        from sqlalchemy import select

        from jupyter_mlops.store.endpoints import BatchEndpointRecord

        with self.ws.store.session() as session:
            record = session.scalar(select(BatchEndpointRecord).where(BatchEndpointRecord.name == name))
            if record is None:
                names = session.scalars(select(BatchEndpointRecord.name)).all()
                raise NotFound(f"No batch endpoint named {name!r}; batch endpoints: {', '.join(names) or 'none'}.")
            return BatchEndpoint(
                name=record.name,
                model=record.model,
                scoring_script=record.scoring_script,
                created_at=record.created_at,
                **json.loads(record.options),
            )

    def list(self) -> list[BatchEndpoint]:
        from sqlalchemy import select

        from jupyter_mlops.store.endpoints import BatchEndpointRecord

        with self.ws.store.session() as session:
            names = session.scalars(select(BatchEndpointRecord.name).order_by(BatchEndpointRecord.name)).all()
        return [self.get(n) for n in names]

    def delete(self, name: str) -> None:
        from sqlalchemy import delete

        from jupyter_mlops.store.endpoints import BatchEndpointRecord

        self.get(name)
        with self.ws.store.session() as session:
            session.execute(delete(BatchEndpointRecord).where(BatchEndpointRecord.name == name))

    def invoke(self, name: str, input: str | os.PathLike[str], *, progress: bool = True) -> BatchResult:
        """Score every CSV/Parquet file of ``input`` (a file or a folder)."""
        from jupyter_mlops import _mlflow

        endpoint = self.get(name)
        files = _input_files(Path(input))
        ref = ModelRef.parse(endpoint.model)
        requested = self.ws.models.get(ref.name, ref.selector)
        model = requested
        if endpoint.onnx and not endpoint.scoring_script:
            from jupyter_mlops.deploy.onnx import converted_version

            model = converted_version(self.ws, requested.name, requested.version) or requested
        size = min(endpoint.mini_batch_size, -(-len(files) // endpoint.max_concurrency))  # no worker left idle
        batches = [files[i : i + size] for i in range(0, len(files), size)]
        key = hashlib.sha256(
            json.dumps(
                [f"{model.name}:{model.version}", [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]]
            ).encode()
        ).hexdigest()[:16]
        folder = self.ws.layout.batch_output(name, key)  # the same input again: resume in the same folder
        parts = folder / "parts"
        parts.mkdir(parents=True, exist_ok=True)
        model_dir = folder / "model"
        if not model_dir.exists():
            self.ws.models.download(model.name, model.version, folder / "model.tmp").rename(model_dir)
        client = self.ws.client
        run = client.create_run(
            self.ws.experiment_id(f"batch-{name}"),
            run_name=f"{name}-{key}",
            tags={
                "mlops.batch_endpoint": name,
                "mlops.model": f"{model.name}:{model.version}",  # the version scored
                "mlops.requested_model": f"{requested.name}:{requested.version}",
                "mlops.output": str(folder),
            },
        )
        started = time.perf_counter()
        done = {int(p.stem) for p in parts.glob("*.parquet")}
        todo = [i for i in range(len(batches)) if i not in done]
        failed: list[int] = []
        aborted = False
        bar = _progress(len(batches), len(done), progress, name)
        from jupyter_mlops.deploy.resources import parse

        _, given = _plan(parse(endpoint.resources), onnx=endpoint.onnx and not endpoint.scoring_script)
        with ProcessPoolExecutor(
            max_workers=min(endpoint.max_concurrency, max(1, len(todo))),
            initializer=_worker_init,
            initargs=(str(model_dir), endpoint.scoring_script, given),
        ) as pool:
            attempts = dict.fromkeys(todo, 0)
            running: dict[Future[int], int] = {
                pool.submit(_score_batch, i, [str(f) for f in batches[i]], str(parts)): i for i in todo
            }
            while running:
                future = next(iter(running))
                index = running.pop(future)
                try:
                    future.result(timeout=endpoint.timeout * max(1, len(batches[index])))
                    bar.update(1)
                    continue
                except (FutureTimeout, Exception):
                    attempts[index] += 1
                if attempts[index] <= endpoint.retries:
                    running[pool.submit(_score_batch, index, [str(f) for f in batches[index]], str(parts))] = index
                    continue
                failed.append(index)
                bar.update(1)
                if endpoint.error_threshold != -1 and len(failed) > endpoint.error_threshold:
                    aborted = True
                    for pending in running:
                        pending.cancel()
                    break
        bar.close()
        rows = _rows_scored(parts)
        output = None
        if endpoint.output_action == "append_row" and not aborted:
            output = str(_write_predictions(parts, folder / "predictions.csv"))
        duration = time.perf_counter() - started
        status = "failed" if aborted else "succeeded"
        with _mlflow.translated_errors(f"recording batch invocation of {name}"):
            client.log_metric(run.info.run_id, "files", len(files))
            client.log_metric(run.info.run_id, "rows", rows)
            client.log_metric(run.info.run_id, "failed_mini_batches", len(failed))
            client.log_metric(run.info.run_id, "skipped_mini_batches", len(done))
            client.log_metric(run.info.run_id, "duration_s", duration)
            _mlflow.terminate_run(client, run.info.run_id, "FAILED" if aborted else "FINISHED")
        result = BatchResult(
            endpoint=name,
            run_id=run.info.run_id,
            status=status,
            files=len(files),
            mini_batches=len(batches),
            skipped_mini_batches=len(done),
            failed_mini_batches=len(failed),
            rows=rows,
            duration_s=duration,
            output=output,
        )
        if aborted:  # the model failed on too many mini-batches: the batch endpoint's own failure (502)
            raise EndpointError(
                f"Batch invocation of {name} stopped: {len(failed)} mini-batch(es) failed, more than "
                f"error_threshold={endpoint.error_threshold}. Finished parts are kept in {folder}; invoke again to "
                "resume.",
                result=result.to_dict(),
            )
        return result


# -- worker processes -------------------------------------------------------------------------------------------
_scorer: Any = None


def _plan(asked: Any, *, onnx: bool) -> tuple[Any, dict[str, Any]]:
    """Where the workers infer and what each gets: a worker limits its own address space (RLIMIT_AS)."""
    from jupyter_mlops.deploy import resources as limits

    placement, given = limits.plan(asked, runs_in="router", onnx=onnx)
    if asked.memory is not None:
        if limits.memory_method() is None:
            raise InvalidInput(f"memory={asked.memory_text} cannot be enforced for a worker process on this machine.")
        given["memory_via"] = "rlimit"
    return placement, given


def _apply(given: dict[str, Any]) -> int:
    """Take the worker's resources in the worker itself, before the model loads: its CPUs (a block of its own,
    picked by its pid), its address-space limit, its device; returns its threads."""
    from jupyter_mlops.deploy.resources import choose_cpus

    os.environ.update(given.get("env", {}))
    if given.get("threads"):
        os.sched_setaffinity(0, choose_cpus(int(given["threads"]), str(os.getpid())))
    if given.get("memory_bytes"):
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (int(given["memory_bytes"]), int(given["memory_bytes"])))
    return int(given.get("threads") or 1)


def _worker_init(model_dir: str, script: str | None, given: dict[str, Any] | None = None) -> None:
    """Load the model once per worker process, under the batch endpoint's resources."""
    global _scorer
    import logging

    threads = _apply(given or {})
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    if script:
        import importlib.util
        import sys

        os.environ["MLOPS_MODEL_DIR"] = model_dir
        spec = importlib.util.spec_from_file_location("mlops_batch_score", script)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(Path(script).parent))
        spec.loader.exec_module(module)
        module.init()
        _scorer = ("script", module.run)
        return
    mlmodel = Path(model_dir) / "MLmodel"
    import yaml

    flavors = yaml.safe_load(mlmodel.read_text()).get("flavors", {}) if mlmodel.is_file() else {}
    if "onnx" in flavors:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 1 unless cpu says more: the workers are the parallelism
        provider = str((given or {}).get("provider") or "CPUExecutionProvider")
        providers = [provider, "CPUExecutionProvider"] if provider != "CPUExecutionProvider" else [provider]
        session = ort.InferenceSession(str(Path(model_dir) / flavors["onnx"]["data"]), options, providers=providers)
        from jupyter_mlops.deploy.scoring import input_contract

        _scorer = ("onnx", (session, input_contract(session)))
    else:
        import mlflow.pyfunc

        from jupyter_mlops.deploy.scoring import sklearn_features

        model = mlflow.pyfunc.load_model(model_dir)
        schema = model.metadata.get_input_schema()
        # fitted on an array and no named signature to enforce: its files' column names would only draw a warning
        unnamed = sklearn_features(model)[1] and not (schema is not None and schema.has_input_names())
        _scorer = ("pyfunc", (model, unnamed))


def _score_batch(index: int, files: list[str], parts: str) -> int:
    """Score one mini-batch and write its part (atomically: a part exists only when complete)."""
    import numpy as np
    import pandas as pd

    kind, scorer = _scorer
    if kind == "script":
        result = scorer(files)
        frame = result if isinstance(result, pd.DataFrame) else pd.DataFrame({"prediction": list(result)})
        frame.insert(0, "row", range(len(frame)))
        frame.insert(0, "file", ",".join(Path(f).name for f in files))
    else:
        frames = []
        for path in files:
            data = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
            if kind == "onnx":
                session, contract = scorer
                values = data.to_numpy(dtype=np.float32)
                if contract is not None and not np.isfinite(values).all():
                    contract.check(values, [str(c) for c in data.columns])  # raises: the mini-batch fails
                name = session.get_inputs()[0].name
                output = session.get_outputs()[0].name
                predictions = session.run([output], {name: values})[0]
            else:
                model, unnamed = scorer
                predictions = model.predict(data.set_axis(range(data.shape[1]), axis=1) if unnamed else data)
            frames.append(
                pd.DataFrame({"file": Path(path).name, "row": range(len(data)), "prediction": _column(predictions)})
            )
        frame = pd.concat(frames, ignore_index=True)
    target = Path(parts) / f"{index}.parquet"
    staging = target.with_suffix(".tmp")
    frame.to_parquet(staging, index=False)
    staging.rename(target)
    return len(frame)


def _column(predictions: Any) -> Any:
    """One prediction per row without a Python object per row: a 1-D array, or a list of arrays when the model
    answers several values per row."""
    import numpy as np

    values = predictions.to_numpy() if hasattr(predictions, "to_numpy") else np.asarray(predictions)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    return values if values.ndim == 1 else list(values)


def _input_files(path: Path) -> list[Path]:
    if not path.exists():
        raise InvalidInput(f"The batch input {path} does not exist.")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES)
    files = [f for f in files if f.suffix in SUFFIXES]
    if not files:
        raise InvalidInput(f"{path} holds no CSV or Parquet file to score.")
    return files


def _rows_scored(parts: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in parts.glob("*.parquet"))


def _write_predictions(parts: Path, target: Path) -> Path:
    """The parts in order as one CSV, written by Arrow (several times faster than pandas at a million rows)."""
    import pyarrow as pa
    import pyarrow.csv
    import pyarrow.parquet as pq

    tables = [pq.read_table(p) for p in sorted(parts.glob("*.parquet"), key=lambda p: int(p.stem))]
    table = pa.concat_tables(tables, promote_options="default")
    for index, column in enumerate(table.schema):
        if pa.types.is_nested(column.type):  # several values per row: CSV has no such type, write their text
            text = pa.array(table.column(index).to_pandas().astype(str))
            table = table.set_column(index, column.name, text)
    pyarrow.csv.write_csv(table, target)
    return target


def _progress(total: int, done: int, enabled: bool, name: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, disable=not enabled, desc=f"batch {name}", unit="mini-batch")
