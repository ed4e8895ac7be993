"""Package a model version as a Docker build context: Dockerfile, locked requirements, the model's files, the
scoring script with its code folder, and the source of jupyter_mlops itself, so that the container runs the same
entrypoint as an endpoint's deployment worker (``python -m jupyter_mlops.deploy.serve``). Optionally build the
image and write a KServe ``InferenceService`` for it.

Layout of the context (and of ``/app`` in the image)::

    Dockerfile  requirements.txt  jupyter_mlops/  model/  [code/]  [inferenceservice.yaml]
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from jupyter_mlops.exceptions import Conflict, InvalidInput
from jupyter_mlops.records import Record

if TYPE_CHECKING:
    from jupyter_mlops.deploy.resources import Resources
    from jupyter_mlops.records import ModelVersion
    from jupyter_mlops.workspace import Workspace

MANIFEST = "inferenceservice.yaml"
CODE_LIMIT_BYTES = 100 * 1024 * 1024
# Never part of a scoring script's code folder: caches, checkouts, workspaces.
_SKIPPED = re.compile(r"^(\..*|__pycache__|mlops-workspace|mlruns|node_modules)$")


@dataclass(frozen=True)
class Package(Record):
    name: str
    model: str
    requested: str
    folder: str
    requirements: list[str]
    image: str | None
    image_id: str | None
    manifest: str | None
    table_columns: ClassVar[tuple[str, ...]] = ("name", "model", "folder", "image", "manifest")


def package(
    ws: Workspace,
    model: str,
    *,
    out: str | os.PathLike[str],
    environment: str | None = None,
    scoring_script: str | os.PathLike[str] | None = None,
    name: str | None = None,
    onnx: bool = True,
    build: bool = False,
    tag: str | None = None,
    base: str | None = None,
    host_ca: bool = False,
    kserve: bool = False,
    endpoint: str | None = None,
    resources: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Package:
    """Write the build context of ``model`` (``NAME:VERSION`` or ``models:/NAME@ALIAS``) into ``out`` (new or
    empty); with ``build``, build it as ``tag``; with ``kserve``, write ``inferenceservice.yaml`` too.

    Like ``endpoints.deploy``, serves the version's proven ONNX conversion when there is one (``onnx=False``
    opts out). ``environment`` (``NAME[:VERSION]``) replaces the model's own requirements with that environment's
    lock. ``endpoint`` sets the manifest's canary share from that endpoint's traffic. ``base`` overrides the
    Dockerfile's base image for this build; ``host_ca`` lets the build trust this host's CA bundle.

    ``resources`` (``{"cpu": 2, "memory": "2Gi", "gpu": 1}``; by default those of the ``endpoint``'s deployment
    serving the model) are documented in the Dockerfile (with the ``docker run`` flags that give them) and set as
    the manifest's requests and limits (``nvidia.com/gpu`` for GPUs); a GPU installs ``onnxruntime-gpu`` in place
    of ``onnxruntime``. They are not checked against this machine: the image runs elsewhere.
    """
    from jupyter_mlops.deploy import kserve as kserve_manifest
    from jupyter_mlops.deploy import resources as limits
    from jupyter_mlops.refs import ModelRef

    target = Path(out).expanduser().resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise Conflict(f"{target} is not an empty folder: give a new or empty folder for the build context.")
    script = Path(scoring_script).expanduser().resolve() if scoring_script else None
    if script is not None and not script.is_file():
        raise InvalidInput(f"The scoring script {script} does not exist.")
    if endpoint and not kserve:
        raise InvalidInput("endpoint= sets the canary share of the KServe manifest: pass kserve=True with it.")
    ref = ModelRef.parse(model)
    requested = ws.models.get(ref.name, ref.selector)
    served = requested
    if onnx and script is None:
        from jupyter_mlops.deploy.onnx import converted_version

        served = converted_version(ws, requested.name, requested.version) or requested
    deployment = _dns_label(name or served.name)
    image = tag or f"{deployment}:{served.version}"
    asked = limits.parse(resources, machine=False)  # checked before anything is written
    canary = None
    if kserve and endpoint:
        info = ws.endpoints.show(endpoint)
        canary = kserve_manifest.canary_percent(info, _ref(served), _ref(requested))
        if resources is None:  # the deployment's own, as recorded
            own = kserve_manifest.deployment_of(info, _ref(served), _ref(requested))
            asked = limits.parse(own.resources if own is not None else None, machine=False)
    lock_text, python = _environment_lock(ws, environment) if environment else (None, None)

    say = progress or (lambda message: None)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        say(f"Downloading {_ref(served)}")
        model_dir = ws.models.download(served.name, served.version, staging / "model")
        kind = _model_kind(model_dir, script, onnx)
        if script is not None:
            _copy_code(script.parent, staging / "code", skip=target)
        requirements = _requirements(model_dir, kind, lock_text, environment)
        if asked.gpu != 0:  # the CUDA build of the same version: the two must not be installed together
            requirements = [re.sub(r"^onnxruntime==", "onnxruntime-gpu==", line) for line in requirements]
        (staging / "requirements.txt").write_text(
            f"# Locked requirements of {deployment} ({_ref(served)}): exact versions, dependencies included.\n"
            + "\n".join(requirements)
            + "\n"
        )
        copy_source(staging / "jupyter_mlops")
        python = python or _model_python(model_dir) or f"{sys.version_info[0]}.{sys.version_info[1]}"
        (staging / "Dockerfile").write_text(
            _dockerfile(deployment, served, requested, python, script.name if script else None, onnx, asked)
        )
        if kserve:
            import yaml

            manifest = kserve_manifest.inference_service(
                _dns_label(endpoint) if endpoint else deployment,
                image,
                model=_ref(served),
                canary_percent=canary,
                resources=asked,
            )
            (staging / MANIFEST).write_text(yaml.safe_dump(manifest, sort_keys=False))
        _readable_by_all(staging)
        if target.exists():
            target.rmdir()
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    image_id = None
    if build:
        from jupyter_mlops.deploy.docker import build_image

        say(f"Building {image}")
        image_id = build_image(target, image, base=base, host_ca=host_ca, progress=progress)
    return Package(
        name=deployment,
        model=_ref(served),
        requested=_ref(requested),
        folder=str(target),
        requirements=requirements,
        image=image if build or kserve else None,
        image_id=image_id,
        manifest=str(target / MANIFEST) if kserve else None,
    )


def _ref(version: ModelVersion) -> str:
    return f"{version.name}:{version.version}"


def _dns_label(name: str) -> str:
    """A name Docker tags and Kubernetes objects accept: lower-case letters, digits and '-'."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].rstrip("-")
    if not label:
        raise InvalidInput(f"Cannot make a container name out of {name!r}: pass name= with letters or digits.")
    return label


def _model_kind(model_dir: Path, script: Path | None, onnx: bool) -> str:
    """How serve.py will load it: 'script', 'onnx' (onnxruntime, no MLflow) or 'pyfunc' (MLflow)."""
    if script is not None:
        return "script"
    mlmodel = model_dir / "MLmodel"
    if mlmodel.is_file():
        import yaml

        flavors = (yaml.safe_load(mlmodel.read_text()) or {}).get("flavors", {})
        return "onnx" if onnx and "onnx" in flavors else "pyfunc"
    if any(model_dir.glob("*.onnx")):
        return "onnx"
    raise InvalidInput(
        f"{model_dir.name} is neither an MLflow model (no MLmodel file) nor an ONNX model (no .onnx file): "
        "package it with a scoring_script (score.py with init() and run())."
    )


def _requirements(model_dir: Path, kind: str, lock_text: str | None, environment: str | None) -> list[str]:
    from jupyter_mlops.deploy.lock import MLFLOW, ONNX_SERVING, SERVING, lock

    wanted = SERVING + (ONNX_SERVING if kind == "onnx" else ())
    skip = MLFLOW if kind == "onnx" else frozenset()
    if lock_text is not None:
        return lock(lock_text.splitlines(), wanted, origin=f"The lock of environment {environment}", skip=skip)
    own = model_dir / "requirements.txt"
    pinned = own.read_text().splitlines() if own.is_file() else []
    if kind == "pyfunc" and not pinned:
        wanted += ("mlflow",)
    return lock(pinned, wanted, origin=f"The model's requirements.txt ({own})", skip=skip)


def _environment_lock(ws: Workspace, environment: str) -> tuple[str, str]:
    """(lock, python version) of a registered environment, built on demand (its lock is its ``pip freeze``)."""
    from jupyter_mlops.environments import Environments

    env_name, _, env_version = environment.partition(":")
    record = Environments(ws).build(env_name, env_version or None)
    if not record.lock:
        raise InvalidInput(f"Environment {environment} has no lock: build it (jupyter mlops env build {env_name}).")
    return record.lock, record.python


def _model_python(model_dir: Path) -> str | None:
    """Major.minor of the Python the model was saved with (its MLmodel), to pick the base image."""
    mlmodel = model_dir / "MLmodel"
    if not mlmodel.is_file():
        return None
    import yaml

    flavors = (yaml.safe_load(mlmodel.read_text()) or {}).get("flavors", {})
    version = str(flavors.get("python_function", {}).get("python_version") or "")
    match = re.match(r"^(\d+\.\d+)", version)
    return match.group(1) if match else None


def _copy_code(folder: Path, dest: Path, *, skip: Path) -> None:
    """The scoring script's folder (its code: modules it imports, small files), without caches and checkouts."""
    files = [
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not any(_SKIPPED.match(part) for part in path.relative_to(folder).parts)
        and skip not in path.parents
    ]
    size = sum(path.stat().st_size for path in files)
    if size > CODE_LIMIT_BYTES:
        raise InvalidInput(
            f"The scoring script's folder {folder} holds {size / 2**20:.0f} MB: move score.py and the code it "
            f"imports into a folder of their own (at most {CODE_LIMIT_BYTES // 2**20} MB)."
        )
    for path in files:
        copy = dest / path.relative_to(folder)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, copy)


def copy_source(dest: Path) -> None:
    """The jupyter_mlops package's Python files (no labextension, no caches): the serving code of this version."""
    import jupyter_mlops

    source = Path(jupyter_mlops.__file__).parent
    for path in source.rglob("*.py"):
        relative = path.relative_to(source)
        if relative.parts[0] == "labextension" or "__pycache__" in relative.parts:
            continue
        (dest / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest / relative)


def _readable_by_all(folder: Path) -> None:
    """The image runs as an unprivileged user: it must read every file COPY takes from the context."""
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode | (0o755 if path.is_dir() else 0o644))


def _dockerfile(
    deployment: str,
    served: ModelVersion,
    requested: ModelVersion,
    python: str,
    script: str | None,
    onnx: bool,
    resources: Resources | None = None,
) -> str:
    entrypoint = ["python", "-m", "jupyter_mlops.deploy.serve", "--model-dir", "/app/model", "--name", deployment]
    if script:
        entrypoint += ["--scoring-script", f"/app/code/{script}"]
    if not onnx:
        entrypoint += ["--no-onnx"]
    asked = "" if _ref(served) == _ref(requested) else f", the ONNX conversion of {_ref(requested)}"
    lines = [
        f"# Deployment {deployment}: {_ref(served)}{asked}, packaged by jupyter-mlops.",
        "# docker build -t IMAGE .   (--build-arg BASE=IMAGE for another base image with the same Python)",
        "# docker run --network host IMAGE   (serves on port 8080)",
        *_route_lines(deployment),
        *_resource_lines(resources),
        f"ARG BASE=python:{python}-slim",
        "FROM ${BASE}",
        "ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \\",
        "    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH PYTHONPATH=/app HOME=/tmp",
        "RUN python3 -m venv /opt/venv",
        "COPY requirements.txt /app/requirements.txt",
        "RUN pip install -r /app/requirements.txt",
        "COPY jupyter_mlops /app/jupyter_mlops",
        "COPY model /app/model",
        *(["COPY code /app/code"] if script else []),
        "WORKDIR /app",
        "USER 65532:65532",
        "EXPOSE 8080",
        *([f"LABEL org.jupyter-mlops.resources={json.dumps(json.dumps(resources.asked()))}"] if resources else []),
        f"ENTRYPOINT {json.dumps(entrypoint)}",
        'CMD ["--host", "0.0.0.0", "--port", "8080"]',
    ]
    return "\n".join(lines) + "\n"


def _route_lines(name: str) -> list[str]:
    """What the packaged server answers (``serve.py``: every protocol an endpoint speaks), for the Dockerfile."""
    return [
        "# Routes:",
        "#   POST /score                  MLflow's JSON bodies (dataframe_split, dataframe_records, instances, inputs)",
        "#   POST /invocations            MLflow's scoring protocol: JSON, CSV or Parquet; GET /ping, GET /version",
        f"#   POST /v2/models/{name}/infer   Open Inference Protocol v2 (KServe, Triton): JSON or binary tensors",
        f"#   GET /v2, /v2/health/live, /v2/health/ready, /v2/models/{name}, /v2/models/{name}/ready",
        "#   GET /health, /ready, /metrics (Prometheus)",
    ]


def _resource_lines(resources: Resources | None) -> list[str]:
    """The Dockerfile's note of the deployment's resources and the ``docker run`` flags that give them (an image
    cannot set its own limits)."""
    if resources is None or resources.empty:
        return []
    from jupyter_mlops.deploy.resources import size

    flags = []
    if resources.cpu is not None:
        flags.append(f"--cpus {resources.asked()['cpu']}")
    if resources.memory is not None:
        flags.append(f"--memory {resources.memory}b")
    if resources.gpu != 0:
        flags.append(f"--gpus {1 if resources.gpu == 'prefer' else resources.gpu}")
    memory = f" ({size(resources.memory)})" if resources.memory is not None else ""
    lines = [
        f"# Resources: {resources.describe()}{memory}; give them when it runs:",
        f"#   docker run --network host {' '.join(flags)} IMAGE",
    ]
    if resources.gpu != 0:
        lines.append("#   GPU: onnxruntime-gpu in place of onnxruntime; the host needs the NVIDIA container toolkit.")
    return lines
