"""The Docker engine: build an image from a build context, run it as a detached container, stop it, read its logs.

Talks to the engine ``DOCKER_HOST`` names (the docker SDK's ``from_env``). Builds and containers use the host's
network: engines started with ``--bridge=none`` cannot publish ports, and ``pip install`` in a build needs the
host's route to the package index. Where TLS to the index is intercepted, ``host_ca=True`` copies the host's CA
bundle into the build and hands pip the host's index settings, without changing the Dockerfile users ship.
"""

from __future__ import annotations

import configparser
import os
import re
import ssl
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyter_mlops.exceptions import (
    Conflict,
    DockerUnavailable,
    EndpointError,
    ImageBuildFailed,
    InvalidInput,
    NotFound,
)

LABEL = "org.jupyter-mlops.deployment"
HOST_CA = ".host-ca.crt"
HOST_CA_DOCKERFILE = ".Dockerfile.host-ca"
_HOST_CA_IN_IMAGE = "/usr/local/share/ca-certificates/jupyter-mlops-build-host.crt"
_PIP_INDEX_SETTINGS = {"index-url": "PIP_INDEX_URL", "extra-index-url": "PIP_EXTRA_INDEX_URL"}


def build_image(
    context: Path,
    tag: str,
    *,
    base: str | None = None,
    host_ca: bool = False,
    progress: Callable[[str], None] | None = None,
) -> str:
    """Build ``context`` (a folder with a Dockerfile) as ``tag``; returns the image id.

    ``base`` is passed as the ``BASE`` build argument; ``progress`` receives each line of the build log.
    """
    import docker.errors

    context = Path(context)
    if not (context / "Dockerfile").is_file():
        raise InvalidInput(f"{context} has no Dockerfile: give a build context written by package().")
    engine = _client()
    buildargs = {"BASE": base} if base else {}
    dockerfile = "Dockerfile"
    log: list[str] = []
    with tempfile.TemporaryFile() as archive:
        with tarfile.open(fileobj=archive, mode="w") as tar:
            for item in sorted(context.iterdir()):
                tar.add(item, arcname=item.name)
            if host_ca:
                buildargs.update(_pip_index_settings())
                _add_text(tar, HOST_CA_DOCKERFILE, _with_host_ca((context / "Dockerfile").read_text(), buildargs))
                tar.add(_host_ca_bundle(), arcname=HOST_CA)
                dockerfile = HOST_CA_DOCKERFILE
        archive.seek(0)
        try:
            for chunk in engine.api.build(
                fileobj=archive,
                custom_context=True,
                tag=tag,
                dockerfile=dockerfile,
                buildargs=buildargs,
                network_mode="host",
                rm=True,
                forcerm=True,
                decode=True,
            ):
                if "error" in chunk:
                    raise ImageBuildFailed(_build_error(tag, chunk["error"], log))
                for line in str(chunk.get("stream", "")).splitlines():
                    if line.strip():
                        log.append(line)
                        if progress:
                            progress(line)
        except docker.errors.APIError as exc:
            raise ImageBuildFailed(_build_error(tag, exc.explanation or str(exc), log)) from exc
    try:
        return engine.images.get(tag).id
    except docker.errors.ImageNotFound as exc:
        raise ImageBuildFailed(_build_error(tag, "the engine reports no image after the build", log)) from exc


def run_arguments(
    image: str,
    *,
    name: str,
    port: int,
    env: dict[str, str] | None = None,
    arguments: list[str] | None = None,
    resources: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The keyword arguments of ``containers.run`` for a deployment's container: the engine enforces its
    resources (``resources.serving``'s dict): ``nano_cpus`` for cpu, ``mem_limit`` (and no swap on top) for memory,
    a device request for its GPUs."""
    kwargs: dict[str, Any] = {
        "image": image,
        "command": ["--host", "127.0.0.1", "--port", str(port), *(arguments or [])],
        "name": name,
        "environment": env or {},
        "network_mode": "host",
        "detach": True,
        "labels": {LABEL: name},
    }
    given = resources or {}
    if given.get("cpu") is not None:
        kwargs["nano_cpus"] = int(float(given["cpu"]) * 1_000_000_000)
    if given.get("memory_bytes"):
        kwargs["mem_limit"] = int(given["memory_bytes"])
        kwargs["memswap_limit"] = int(given["memory_bytes"])  # the same figure: no swap beyond the limit
    if given.get("provider") in ("CUDAExecutionProvider", "cuda"):
        from docker.types import DeviceRequest

        ids = [i for i in given.get("env", {}).get("CUDA_VISIBLE_DEVICES", "").split(",") if i]
        kwargs["device_requests"] = [DeviceRequest(device_ids=ids or ["0"], capabilities=[["gpu"]])]
    return kwargs


def run_container(
    image: str,
    *,
    name: str,
    port: int,
    env: dict[str, str] | None = None,
    arguments: list[str] | None = None,
    resources: dict[str, Any] | None = None,
) -> str:
    """Start ``image`` detached on the host's network, serving on 127.0.0.1:``port``, under its ``resources``;
    returns the container id.

    A stopped container of the same name (left by a crash) is replaced; a running one is a Conflict.
    """
    import docker.errors

    engine = _client()
    try:
        old = engine.containers.get(name)
    except docker.errors.NotFound:
        old = None
    if old is not None:
        if old.status == "running":
            raise Conflict(f"A container named {name!r} is running ({old.short_id}): stop it first.", id=old.id)
        old.remove(force=True)
    try:
        kwargs = run_arguments(image, name=name, port=port, env=env, arguments=arguments, resources=resources)
        container = engine.containers.run(kwargs.pop("image"), **kwargs)
    except docker.errors.ImageNotFound as exc:
        raise NotFound(f"No image {image!r} in the engine: build it first (package(..., build=True)).") from exc
    except docker.errors.APIError as exc:
        raise EndpointError(f"The engine could not start {image} as {name}: {exc.explanation or exc}") from exc
    return container.id


def stop_container(container_id: str) -> None:
    """Stop and remove the container; one that is already gone is fine."""
    import docker.errors

    try:
        container = _client().containers.get(container_id)
        container.stop(timeout=10)
        container.remove(force=True)
    except docker.errors.NotFound:
        return


def container_running(container_id: str) -> bool:
    import docker.errors

    try:
        return _client().containers.get(container_id).status == "running"
    except docker.errors.NotFound:
        return False


def container_exit(container_id: str) -> str:
    """Why the container is not running, as the engine recorded it: its exit code (a signal's name when the code
    says one, 128 + N), the OOM killer, an engine error, or that it was removed."""
    import signal

    import docker.errors

    try:
        state = _client().containers.get(container_id).attrs.get("State", {})
    except docker.errors.NotFound:
        return "the container was removed"
    if state.get("Running"):
        return "the container runs"
    if state.get("OOMKilled"):
        return "killed by the kernel's OOM killer (out of memory)"
    code = int(state.get("ExitCode") or 0)
    reason = f"exited with code {code}"
    if 128 < code < 128 + signal.NSIG:
        reason += f" (killed by {signal.Signals(code - 128).name})"
    if state.get("Error"):
        reason += f": {state['Error']}"
    return reason


def container_logs(container_id: str, lines: int = 100) -> str:
    """The last ``lines`` lines the container wrote (stdout and stderr)."""
    import docker.errors

    try:
        return _client().containers.get(container_id).logs(tail=lines).decode(errors="replace")
    except docker.errors.NotFound as exc:
        raise NotFound(f"No container {container_id[:12]} in the engine: it was removed.") from exc


def _client() -> Any:
    try:
        import docker
        import requests
    except ImportError as exc:
        raise DockerUnavailable("The docker Python package is missing: pip install docker.") from exc
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock (DOCKER_HOST is not set)"
    try:
        engine = docker.from_env(timeout=600)
        engine.ping()
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise DockerUnavailable(
            f"No Docker engine answers at {where}: {exc}. Start one (e.g. `sudo systemctl start docker`; in a "
            "checkout of jupyter-mlops, `scripts/ensure-docker` starts a private one and prints its DOCKER_HOST) "
            "and set DOCKER_HOST to its socket."
        ) from exc
    return engine


def _with_host_ca(dockerfile: str, buildargs: dict[str, str]) -> str:
    """The Dockerfile with the host's CA bundle and pip settings added after each FROM."""
    lines = [f"COPY {HOST_CA} {_HOST_CA_IN_IMAGE}", f"ARG PIP_CERT={_HOST_CA_IN_IMAGE}"]
    lines += [f"ARG {name}" for name in sorted(buildargs) if name.startswith("PIP_")]
    return re.sub(r"(?im)^(FROM\s.*)$", lambda m: "\n".join([m.group(1), *lines]), dockerfile)


def _host_ca_bundle() -> Path:
    candidates = [os.environ.get(v) for v in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")]
    candidates += [ssl.get_default_verify_paths().cafile, "/etc/ssl/certs/ca-certificates.crt"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise InvalidInput("host_ca: no CA bundle found on this host; set SSL_CERT_FILE to the bundle pip should trust.")


def _pip_index_settings() -> dict[str, str]:
    """The host's pip index settings a build can use: http(s) URLs only (a file:// index is not in the build)."""
    found: dict[str, str] = {}
    parser = configparser.ConfigParser()
    home = Path.home()
    parser.read(
        [
            "/etc/pip.conf",
            home / ".pip" / "pip.conf",
            home / ".config" / "pip" / "pip.conf",
            os.environ.get("PIP_CONFIG_FILE") or "",
        ]
    )
    for option, variable in _PIP_INDEX_SETTINGS.items():
        for section in ("global", "install"):
            if parser.has_option(section, option):
                found[variable] = parser.get(section, option)
        if os.environ.get(variable):
            found[variable] = os.environ[variable]
        urls = [u for u in found.get(variable, "").split() if u.startswith(("http://", "https://"))]
        if urls:
            found[variable] = " ".join(urls)
        else:
            found.pop(variable, None)
    return found


def _add_text(tar: tarfile.TarFile, name: str, text: str) -> None:
    import io

    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _build_error(tag: str, error: str, log: list[str]) -> str:
    tail = "\n".join(log[-15:])
    return f"Building {tag} failed: {error.strip()}\n{tail}".rstrip()
