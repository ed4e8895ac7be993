"""Automatic ONNX: a scikit-learn version deployed to an endpoint is served by a proven ONNX conversion by default.

Converted at registration when a sample comes with the version (its MLflow input example, or ``sample=`` given to
``register``): ``convert_at_registration`` proves parity on it and registers the conversion as the next version,
so every deploy serves ONNX from its first request. Registration rather than the first deploy, because the pickled
model's first ``/score`` costs importing scikit-learn and MLflow in every worker (seconds: start to first
``/score`` could not stay under 2 s), while a conversion costs about as much once, where the model is made, and
never on a serving path. A failed proof is recorded on the version (tag ``onnx_refused``) and registration goes on.

A version without a conversion at deploy (registered before, without a sample, or given ``sample=`` only at
deploy) is converted at its first deploy, after the pickled model serves: a converter process of its own (the
caller may be a CLI that exits at once, and converting inside a serving worker would hold the GIL its requests
need) converts it with ``convert_to_onnx``, checks the conversion loads as the workers will load it, and replaces
the deployment in place with it: the same replacement as a deploy of another version (the workers load it first,
then swap their routing table), so no request fails. Its sample is the first found of: ``sample=`` given to
deploy, the version's input example, the dataset its job logged from a file (``mlops.datasets.load`` in the job,
or ``log_dataset(..., source=PATH)``); at most ``MAX_SAMPLE_ROWS`` rows. Without one, or when the proof fails
(recorded as above: later deploys do not try again unless given a sample), the pickled model keeps serving and
the deployment's record says why (``DeploymentInfo.serving``).
Run as ``python -m jupyter_mlops.deploy.auto_onnx ...`` (started by ``resolve``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import secrets
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops.deploy.onnx import CONVERTED_FROM_TAG, convert_to_onnx, converted_version
from jupyter_mlops.exceptions import InvalidInput, MlopsError
from jupyter_mlops.processes import start_detached

if TYPE_CHECKING:
    from jupyter_mlops.records import ModelVersion
    from jupyter_mlops.store.schema import Deployment
    from jupyter_mlops.workspace import Workspace

MAX_SAMPLE_ROWS = 1000
REFUSED_TAG = "onnx_refused"  # on a source version: why its conversion failed its proof
WAIT_S = 300.0  # how long a converter waits for its deployment to serve before giving up
log = logging.getLogger("jupyter_mlops.auto_onnx")


@dataclass(frozen=True)
class Resolution:
    """What a deployment serves now, and the options that say why (``serving``; ``conversion``: the token of a
    converter on its way)."""

    record: ModelVersion
    options: dict[str, Any]


def resolve(
    ws: Workspace,
    requested: ModelVersion,
    *,
    endpoint: str,
    deployment: str,
    onnx: bool,
    usable: bool,
    script: bool,
    own_process: bool,
    sample: Any = None,
) -> Resolution:
    """The model a deploy serves: the proven ONNX conversion of ``requested`` if there is one; otherwise the
    version itself, and for a scikit-learn version with a sample, a converter started to switch it to ONNX."""
    if script:
        return Resolution(requested, {"serving": "script: its scoring script"})
    if not onnx:
        return Resolution(requested, {"serving": "pyfunc: onnx=False"})
    if not usable:
        return Resolution(requested, {"serving": "pyfunc: its environment has no onnxruntime"})
    conversion = converted_version(ws, requested.name, requested.version)
    if conversion is not None:
        return Resolution(conversion, {"serving": _onnx_note(conversion)})
    kind = _kind(ws, requested)
    if kind != "sklearn":
        notes = {"onnx": "onnx", "files": "files: not an MLflow model"}
        note = notes.get(kind, f"pyfunc: automatic ONNX conversion covers scikit-learn models ({kind})")
        return Resolution(requested, {"serving": note})
    if own_process:
        return Resolution(
            requested,
            {"serving": "pyfunc: in its own process, only a conversion made first is served (convert_to_onnx)"},
        )
    refused = requested.tags.get(REFUSED_TAG)
    if refused and sample is None:
        return Resolution(requested, {"serving": f"pyfunc: {refused}"})
    token = secrets.token_hex(8)
    sample_file = None
    if sample is not None:
        sample_file = _save_sample(ws, endpoint, token, sample)
        found: str | None = f"the sample given to deploy ({min(len(sample), MAX_SAMPLE_ROWS)} rows)"
    else:
        found = _find_sample(ws, requested)
    if found is None:
        return Resolution(
            requested,
            {
                "serving": "pyfunc: no sample to prove an ONNX conversion on (pass sample= to deploy, save the model "
                "with an input example, or load its training data with mlops.datasets in its job)"
            },
        )
    _start(ws, endpoint, deployment, f"{requested.name}:{requested.version}", token, sample_file)
    return Resolution(requested, {"serving": f"pyfunc: converting to ONNX, parity on {found}", "conversion": token})


def convert_at_registration(ws: Workspace, record: ModelVersion, sample: Any = None) -> ModelVersion | None:
    """The conversion of a scikit-learn version just registered with a sample (``sample``, else its input
    example), or None: no sample, not scikit-learn, or the proof failed (then the tag ``onnx_refused`` says why).
    Never raises: the registration stands whatever happens to its conversion."""
    model = f"{record.name}:{record.version}"
    try:
        if sample is None and not _mlmodel(ws, record).get("saved_input_example_info"):
            return None
        if _kind(ws, record) != "sklearn":
            return None
        if sample is None:
            sample = _load_sample(ws, record, None)
        elif hasattr(sample, "head"):
            sample = sample.head(MAX_SAMPLE_ROWS)
        else:
            sample = sample[:MAX_SAMPLE_ROWS]
        return convert_to_onnx(ws, model, sample).version
    except Exception as exc:
        reason = _refusal(exc)
        log.info("%s is not converted to ONNX: %s", model, reason)  # the version's tag says it to whoever looks
        if isinstance(exc, InvalidInput):
            with contextlib.suppress(Exception):
                ws.models.set_tags(record.name, record.version, {REFUSED_TAG: reason})
        return None


def _refusal(exc: Exception) -> str:
    what = "was refused" if isinstance(exc, MlopsError) else f"failed: {type(exc).__name__}"
    return f"the ONNX conversion {what}: {exc}"[:1000]


def _onnx_note(conversion: ModelVersion) -> str:
    rows = conversion.tags.get("onnx_parity_rows")
    proof = f", parity on {rows} rows" if rows else ""
    return (
        f"onnx: {conversion.name}:{conversion.version}, the conversion of {conversion.tags[CONVERTED_FROM_TAG]}{proof}"
    )


# -- what a version is and what it was saved with ----------------------------------------------------------------
def _mlmodel(ws: Workspace, record: ModelVersion) -> dict[str, Any]:
    """The version's MLmodel file ({} when it has none): read in place from a local store, else fetched alone."""
    import yaml

    local = _local_path(record.source)
    if local is not None:
        path = local / "MLmodel"
        return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}
    import mlflow.artifacts

    with tempfile.TemporaryDirectory(prefix="mlops-mlmodel-") as tmp:
        try:
            path = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=f"{record.source.rstrip('/')}/MLmodel", dst_path=tmp, tracking_uri=ws.tracking_uri
                )
            )
        except Exception:
            return {}
        return yaml.safe_load(path.read_text()) or {}


def _kind(ws: Workspace, record: ModelVersion) -> str:
    """onnx, sklearn, pyfunc (another MLflow flavour) or files (no MLmodel; onnx when it is an ONNX file)."""
    flavors = _mlmodel(ws, record).get("flavors", {})
    for kind in ("onnx", "sklearn"):
        if kind in flavors:
            return kind
    if flavors:
        return "pyfunc"
    local = _local_path(record.source)
    onnx_file = local is not None and (local.suffix == ".onnx" or (local.is_dir() and any(local.glob("*.onnx"))))
    return "onnx" if onnx_file else "files"


def _find_sample(ws: Workspace, record: ModelVersion) -> str | None:
    """Where the converter will find a sample, said for the deployment's record; None when there is none."""
    info = _mlmodel(ws, record).get("saved_input_example_info")
    if info:
        return "its input example"
    dataset = _logged_dataset(ws, record)
    return f"the dataset {dataset[0]!r} its job logged" if dataset else None


def _logged_dataset(ws: Workspace, record: ModelVersion) -> tuple[str, Path] | None:
    """(name, file) of a dataset the version's run logged from a CSV or Parquet file that still exists."""
    if not record.run_id:
        return None
    try:
        inputs = ws.client.get_run(record.run_id).inputs
    except Exception:
        return None
    for dataset_input in getattr(inputs, "dataset_inputs", None) or []:
        dataset = dataset_input.dataset
        try:
            uri = json.loads(dataset.source or "{}").get("uri")
        except (ValueError, AttributeError):
            continue
        path = _local_path(uri) if uri else None
        if path is not None and path.is_file() and path.suffix in (".csv", ".parquet"):
            return dataset.name, path
    return None


def _local_path(uri: str | None) -> Path | None:
    if not uri:
        return None
    if uri.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(uri).path))
    return Path(uri) if uri.startswith("/") else None


def _save_sample(ws: Workspace, endpoint: str, token: str, sample: Any) -> Path:
    """The first ``MAX_SAMPLE_ROWS`` rows of a deploy's ``sample=``, for the converter (it removes the file)."""
    import numpy as np
    import pandas as pd

    try:
        frame = sample if hasattr(sample, "columns") else pd.DataFrame(np.asarray(sample))
        frame = frame.head(MAX_SAMPLE_ROWS)
        np.asarray(frame, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"sample must be a table of numbers (a DataFrame or a 2-D array): {exc}.") from exc
    if not len(frame):
        raise InvalidInput("sample must hold at least one row.")
    folder = ws.layout.serving(endpoint)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"onnx-sample-{token}.parquet"
    frame.set_axis([str(c) for c in frame.columns], axis=1).to_parquet(path)
    return path


def _load_sample(ws: Workspace, record: ModelVersion, sample_file: Path | None) -> Any:
    import pandas as pd

    if sample_file is not None:
        frame = pd.read_parquet(sample_file)
        return frame if not all(c.isdigit() for c in frame.columns) else frame.to_numpy()  # an array's, unnamed
    with tempfile.TemporaryDirectory(prefix="mlops-example-") as tmp:
        folder = ws.models.download(record.name, record.version, Path(tmp) / "model")
        if (folder / "MLmodel").is_file():
            from mlflow.models import Model

            example = Model.load(str(folder)).load_input_example(str(folder))
            if example is not None:
                return example.head(MAX_SAMPLE_ROWS) if hasattr(example, "head") else example[:MAX_SAMPLE_ROWS]
    dataset = _logged_dataset(ws, record)
    if dataset is None:
        raise InvalidInput("no sample to prove an ONNX conversion on")
    path = dataset[1]
    if path.suffix == ".csv":
        return pd.read_csv(path, nrows=MAX_SAMPLE_ROWS)
    import pyarrow.parquet as pq

    return next(pq.ParquetFile(path).iter_batches(batch_size=MAX_SAMPLE_ROWS)).to_pandas()


# -- the converter process --------------------------------------------------------------------------------------
def _start(ws: Workspace, endpoint: str, deployment: str, model: str, token: str, sample_file: Path | None) -> None:
    """Start the converter, detached (a kernel restart does not stop it); its output goes to the deployment's log.
    It waits for the deployment to serve the version with ``token`` before it converts anything."""
    command = [sys.executable, "-m", "jupyter_mlops.deploy.auto_onnx", "--workspace", str(ws.root)]
    command += ["--metadata-uri", ws.metadata_uri, "--endpoint", endpoint, "--deployment", deployment]
    command += ["--model", model, "--token", token]
    if not ws.is_local:
        command += ["--tracking-uri", ws.tracking_uri]
    if sample_file is not None:
        command += ["--sample", str(sample_file)]
    path = ws.layout.deployment_log(endpoint, deployment)
    process = start_detached(command, path)
    threading.Thread(target=process.wait, name="mlops-onnx-reaper", daemon=True).start()  # no zombie left


def convert_and_switch(
    ws: Workspace, endpoint: str, deployment: str, model: str, token: str, sample: Path | None
) -> None:
    """Wait until the deployment serves ``model`` under ``token``, then serve its proven conversion (converting it
    unless another converter did) or record why not."""
    from jupyter_mlops.refs import ModelRef

    row = _wait_serving(ws, endpoint, deployment, token)
    if row is None:
        log.info("%s/%s no longer serves %s as deployed: nothing to convert", endpoint, deployment, model)
        return
    ref = ModelRef.parse(model)
    record = ws.models.get(ref.name, ref.selector)
    conversion, reason = None, None
    with ws.store.guard(f"onnx-conversion:{record.name}:{record.version}"):  # one conversion of a version at a time
        conversion = converted_version(ws, record.name, record.version)
        if conversion is None:
            started = time.perf_counter()
            try:
                conversion = convert_to_onnx(ws, model, _load_sample(ws, record, sample)).version
                _check_serves(ws, conversion)
            except Exception as exc:  # whatever stops it, the pickled model keeps serving and the record says why
                conversion = None
                reason = _refusal(exc)
                log.warning("%s keeps serving %s: %s", deployment, model, reason)
                if isinstance(exc, InvalidInput):  # the version's own verdict: later deploys do not try again
                    ws.models.set_tags(record.name, record.version, {REFUSED_TAG: reason})
            else:
                log.info("converted %s in %.1f s: %s", model, time.perf_counter() - started, _onnx_note(conversion))
    _switch(ws, endpoint, deployment, token, conversion, reason)


def _check_serves(ws: Workspace, conversion: ModelVersion) -> None:
    """The conversion loads as the workers will load it (a deployment that fails to load would stop serving)."""
    from jupyter_mlops.deploy.scoring import load_scorer

    with tempfile.TemporaryDirectory(prefix="mlops-onnx-check-") as tmp:
        folder = ws.models.download(conversion.name, conversion.version, Path(tmp) / "model")
        load_scorer(folder)


def _wait_serving(ws: Workspace, endpoint: str, deployment: str, token: str) -> Deployment | None:
    """The deployment's row once it serves what was deployed with ``token``; None if it fails, is replaced or
    deleted, or does not serve within ``WAIT_S``."""
    from jupyter_mlops.store import endpoints as q

    deadline, seen = time.monotonic() + WAIT_S, False
    while time.monotonic() < deadline:
        row = q.get_deployment(ws.store, endpoint, deployment)
        if row is not None and json.loads(row.options or "{}").get("conversion") == token:
            seen = True
            if row.status == "active":
                return row
            if row.status not in ("creating", "updating"):
                return None
        elif seen:
            return None
        time.sleep(0.1)
    return None


def _switch(
    ws: Workspace, endpoint: str, deployment: str, token: str, conversion: ModelVersion | None, reason: str | None
) -> None:
    """Replace the deployment in place (as a deploy does: recorded, then applied by every worker) with the
    conversion, or keep its model and record why; unless it was replaced or deleted meanwhile."""
    from jupyter_mlops.deploy.supervision import Supervisor
    from jupyter_mlops.events import envelope
    from jupyter_mlops.store import endpoints as q
    from jupyter_mlops.store.schema import ACTIVE_DEPLOYMENT_STATES

    row = q.get_deployment(ws.store, endpoint, deployment)
    options = json.loads(row.options or "{}") if row is not None else {}
    if row is None or row.status not in ACTIVE_DEPLOYMENT_STATES or options.pop("conversion", None) != token:
        log.info("%s/%s was replaced meanwhile: left as it is", endpoint, deployment)
        return
    options["serving"] = _onnx_note(conversion) if conversion is not None else f"pyfunc: {reason}"
    name, version, uri = (
        (conversion.name, conversion.version, conversion.source)
        if conversion is not None
        else (row.model_name, row.model_version, row.model_uri)
    )
    with ws.models.guard(name) as session:
        ws.models.get(name, version)  # not deleted meanwhile
        q.save_deployment(
            session,
            endpoint,
            deployment,
            model_name=name,
            model_version=version,
            model_uri=uri,
            scoring_script=row.scoring_script,
            options=json.dumps(options),
        )
    Supervisor(ws).apply(endpoint)
    if conversion is not None:
        log.info("%s/%s now serves %s:%s", endpoint, deployment, name, version)
        ws.events.emit(
            "deployment.created",
            f"endpoints/{endpoint}/deployments/{deployment}",
            envelope.model_deployed(
                f"{endpoint}/{deployment}",
                "local",
                [f"{name}:{version}"],
                {},
                endpointName=endpoint,
                deploymentName=deployment,
            ),
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="jupyter_mlops.deploy.auto_onnx")
    for option in ("--workspace", "--metadata-uri", "--endpoint", "--deployment", "--model", "--token"):
        parser.add_argument(option, required=True)
    parser.add_argument("--tracking-uri")
    parser.add_argument("--sample", type=Path)
    args = parser.parse_args(argv)
    os.nice(10)  # the serving workers come first
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s converter: %(message)s")
    log.setLevel(logging.INFO)  # its own steps; the libraries' only when they warn
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    from jupyter_mlops.workspace import Workspace

    ws = Workspace(args.workspace, tracking_uri=args.tracking_uri, metadata_uri=args.metadata_uri)
    try:
        convert_and_switch(ws, args.endpoint, args.deployment, args.model, args.token, args.sample)
    except Exception:
        log.exception("the automatic ONNX conversion of %s stopped", args.model)
    finally:
        if args.sample is not None:
            args.sample.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
