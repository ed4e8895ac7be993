"""Deployments that run as their own process: in their environment's virtualenv, or in a Docker container.

Both run the serving entrypoint (``python -m jupyter_mlops.deploy.serve``) on 127.0.0.1 behind a key of their own;
the endpoint's router forwards to them. What runs is recorded in the deployment's options (``upstream`` for the
router, ``process`` for the control plane), so the control plane can check it, restart it and stop it.

A virtualenv built from a user's spec has the model's packages but not ours: the entrypoint gets a copy of the
``jupyter_mlops`` modules on ``PYTHONPATH`` and the pure-Python web server packages (starlette, uvicorn, ...) at the
end of ``sys.path``, copied from the running environment, so the environment's own packages keep precedence.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops.exceptions import BackendUnavailable, EndpointError
from jupyter_mlops.processes import ProcessIdentity, process_start, stop_process_group

if TYPE_CHECKING:
    from collections.abc import Callable

    from jupyter_mlops.workspace import Workspace

SERVING_DISTRIBUTIONS = (
    "starlette",
    "anyio",
    "sniffio",
    "idna",
    "typing_extensions",
    "uvicorn",
    "click",
    "h11",
    "prometheus_client",
)
READY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Launch:
    """How to (re)start one deployment process; kept in the deployment's options as ``process``."""

    kind: str  # venv | docker
    port: int
    key: str
    command: list[str]  # venv: the full command; docker: the image first
    log: str
    pid: int | None = None
    container: str | None = None
    pid_start: str | None = None  # the process's start time: a later process given the same pid is not this one
    resources: dict[str, Any] | None = None  # resources.serving(...): its CPUs, memory limit, device (since 0013)

    def to_options(self) -> dict[str, Any]:
        return asdict(self)

    def process_alive(self) -> bool:
        """Whether this very process (venv) still runs; launches recorded without a start time go by pid."""
        return self.pid is not None and ProcessIdentity(self.pid, self.pid_start or "").alive()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def runtime(ws: Workspace) -> tuple[Path, Path]:
    """(folder holding a copy of ``jupyter_mlops``, folder holding the web server packages), made once."""
    import jupyter_mlops
    from jupyter_mlops.deploy.package import copy_source

    source = Path(jupyter_mlops.__file__).parent
    stamp = hashlib.sha256()
    for path in sorted(source.rglob("*.py")):  # a changed module (an upgrade, an editable install) makes a new copy
        stamp.update(f"{path.relative_to(source)}:{path.stat().st_size}:{path.stat().st_mtime_ns}".encode())
    root = ws.layout.serving_runtime(f"{metadata.version('jupyter-mlops')}-{stamp.hexdigest()[:12]}")
    package, deps = root / "package", root / "deps"
    if (root / "ready").exists():
        return package, deps
    staging = root.with_suffix(f".{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    copy_source(staging / "package" / "jupyter_mlops")
    for name in SERVING_DISTRIBUTIONS:
        dist = metadata.distribution(name)
        for file in dist.files or []:
            source = Path(str(dist.locate_file(file)))
            if file.parts[0] == ".." or not source.is_file() or "__pycache__" in file.parts:
                continue
            target = staging / "deps" / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    (staging / "ready").touch()
    root.parent.mkdir(parents=True, exist_ok=True)
    try:
        staging.rename(root)
    except OSError:  # another process made it meanwhile
        shutil.rmtree(staging, ignore_errors=True)
    return package, deps


def venv_launch(
    ws: Workspace,
    python: str,
    *,
    model_dir: Path,
    name: str,
    port: int,
    log: Path,
    scoring_script: str | None,
    workers: int,
    options: dict[str, Any],
) -> Launch:
    _, deps = runtime(ws)
    command = [python, "-m", "jupyter_mlops.deploy.serve", *serve_arguments(model_dir, scoring_script, name, options)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--extra-path", str(deps)]
    resources = options.get("resources")
    return Launch("venv", port, secrets.token_urlsafe(24), command, str(log), pid=None, resources=resources)


def docker_launch(
    ws: Workspace,
    model: str,
    *,
    endpoint: str,
    name: str,
    port: int,
    log: Path,
    scoring_script: str | None,
    environment: str | None,
    workers: int,
    options: dict[str, Any],
) -> Launch:
    """Package ``model`` (``NAME:VERSION``) and build its image; the container runs the same entrypoint.

    This machine's build settings come from the environment: ``MLOPS_DOCKER_BASE`` (a base image to build on, e.g.
    one built locally where no registry is reachable) and ``MLOPS_DOCKER_HOST_CA=1`` (trust this host's CA bundle).
    """
    from jupyter_mlops.deploy.package import package

    context = ws.layout.served_model(endpoint, f"{name}-image-{secrets.token_hex(4)}")
    built = package(
        ws,
        model,
        out=context,
        environment=environment,
        scoring_script=scoring_script,
        name=name,
        onnx=options.get("prefer_onnx", True),
        resources={k: v for k, v in (options.get("resources") or {}).items() if k in ("cpu", "memory", "gpu")},
        build=True,
        tag=f"mlops-{endpoint}-{name}:{model.replace(':', '-')}",
        base=os.environ.get("MLOPS_DOCKER_BASE") or None,
        host_ca=os.environ.get("MLOPS_DOCKER_HOST_CA", "") not in ("", "0"),
    )
    assert built.image is not None
    command = [built.image, "--workers", str(workers), *limit_arguments(options)]
    return Launch("docker", port, secrets.token_urlsafe(24), command, str(log), resources=options.get("resources"))


def serve_arguments(model_dir: Path, scoring_script: str | None, name: str, options: dict[str, Any]) -> list[str]:
    """The entrypoint's arguments for a virtualenv process (an image has the model's in its ENTRYPOINT)."""
    arguments = ["--model-dir", str(model_dir), "--name", name]
    if scoring_script:
        arguments += ["--scoring-script", scoring_script]
    if not options.get("prefer_onnx", True):
        arguments.append("--no-onnx")
    return arguments + limit_arguments(options)


def limit_arguments(options: dict[str, Any]) -> list[str]:
    """The deployment's request timeout and body limit, for the entrypoint of a process or a container."""
    return [
        "--request-timeout-s",
        str(options.get("request_timeout_s", 60.0)),
        "--max-body-bytes",
        str(options.get("max_body_bytes", 10 * 1024 * 1024)),
    ]


def spawn(ws: Workspace, launch: Launch) -> tuple[Launch, subprocess.Popen[bytes] | None]:
    """Start the process (or container) without waiting for it: the launch as started (its pid or container), and
    the process handle for a virtualenv process (its parent learns how it exits)."""
    import json
    from dataclasses import replace

    from jupyter_mlops.deploy import resources
    from jupyter_mlops.deploy.serve import KEY_ENV

    Path(launch.log).parent.mkdir(parents=True, exist_ok=True)
    given = launch.resources or {}
    env = {KEY_ENV: launch.key, **given.get("env", {})}  # CUDA_VISIBLE_DEVICES and MLOPS_DEVICE
    if given:
        env[resources.ENV] = json.dumps(given)
    if launch.kind == "venv":
        package, _ = runtime(ws)
        cgroup = resources.make_cgroup(given, f"{Path(launch.log).parent.name}-{launch.port}")
        inherited = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", resources.ENV)}
        env = {**inherited, "PYTHONPATH": str(package), "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", **env}
        with open(launch.log, "a") as log:
            process = subprocess.Popen(
                launch.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=env,
                preexec_fn=resources.preexec(given, cgroup),  # its CPUs and memory limit, before exec
            )
        return replace(launch, pid=process.pid, pid_start=process_start(process.pid) or None), process
    from jupyter_mlops.deploy import docker

    image, *arguments = launch.command
    container = docker.run_container(
        image, name=container_name(launch), port=launch.port, env=env, arguments=arguments, resources=given
    )
    return replace(launch, container=container), None


def start(ws: Workspace, launch: Launch, on_spawn: Callable[[Launch], None] | None = None) -> Launch:
    """Start the process (or container) and wait until it answers ``/ready``; stopped again on failure or
    interruption. ``on_spawn`` gets it as soon as it runs, before the wait, to record it."""
    started, process = spawn(ws, launch)
    try:
        if on_spawn is not None:
            on_spawn(started)
        wait_ready(started, process)
    except BaseException:  # a failure, a timeout or a KeyboardInterrupt: nothing is left running
        stop(started)
        raise
    return started


def wait_ready(started: Launch, process: subprocess.Popen[bytes] | None = None) -> None:
    """Until it answers ``/ready``; an EndpointError with its log's end when it exits first or takes too long (and
    why, when it is its memory limit)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not running(started) or (process is not None and process.poll() is not None):
            returncode = _exit_status(process)
            raise EndpointError(f"The deployment process {exit_summary(started, returncode)}:\n{tail(started)}")
        if ready(started):
            return
        time.sleep(0.1)
    raise EndpointError(f"The deployment process did not become ready within {READY_TIMEOUT_S:.0f} s:\n{tail(started)}")


def _exit_status(process: subprocess.Popen[bytes] | None) -> int | None:
    if process is None:
        return None
    try:
        return process.wait(timeout=2.0)
    except subprocess.TimeoutExpired:
        return None


def exit_summary(started: Launch, returncode: int | None = None) -> str:
    """How a process that did not come up ended: "exceeded its memory limit of ..." when that is why."""
    from jupyter_mlops.deploy.resources import memory_exceeded

    exceeded = memory_exceeded(started.resources, returncode, tail(started))
    if exceeded:
        limit = exceeded.split(": ", 1)[0]  # its log's end follows
        return f"{limit} at start: give it more memory (resources={{'memory': ...}})"
    return "exited at start"


def container_name(launch: Launch) -> str:
    """Known before the container runs, so a launch recorded before it starts can still stop it."""
    return f"mlops-{launch.port}"


def running(launch: Launch) -> bool:
    if launch.kind == "docker":
        from jupyter_mlops.deploy import docker

        try:
            return bool(launch.container) and docker.container_running(launch.container or "")
        except BackendUnavailable:  # no engine: nothing of it runs (a restart will say why it cannot start)
            return False
    return launch.process_alive()


def stop(launch: Launch) -> None:
    if launch.kind == "docker":
        from jupyter_mlops.deploy import docker

        with contextlib.suppress(BackendUnavailable):  # no engine: the container does not run either
            docker.stop_container(launch.container or container_name(launch))
        return
    if launch.process_alive():  # never signal a process that only inherited the pid
        stop_process_group(launch.pid)


def tail(launch: Launch, lines: int = 30) -> str:
    if launch.kind == "docker" and launch.container:
        from jupyter_mlops.deploy import docker

        return docker.container_logs(launch.container, lines)
    path = Path(launch.log)
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def death_reason(launch: Launch, returncode: int | None, reason: str) -> str:
    """``reason`` (how the process or container ended), or that it exceeded its memory limit when that is why."""
    from jupyter_mlops.deploy.resources import memory_exceeded

    if not launch.resources:
        return reason
    try:
        text = tail(launch)
    except Exception:  # a container the engine removed, an engine that does not answer
        text = ""
    return memory_exceeded(launch.resources, returncode, f"{text}\n{reason}") or reason


def exit_reason(launch: Launch) -> str | None:
    """Why a container stopped, as its engine recorded it; None for a process (only its parent can tell)."""
    if launch.kind != "docker" or not launch.container:
        return None
    from jupyter_mlops.deploy import docker

    try:
        return docker.container_exit(launch.container)
    except BackendUnavailable as exc:
        return f"the Docker engine does not answer: {exc.message}"


def ready(launch: Launch, timeout: float = 1.0) -> bool:
    """Whether it answers ``/ready`` (its model is loaded)."""
    request = urllib.request.Request(launch.url + "/ready", headers={"Authorization": f"Bearer {launch.key}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False
