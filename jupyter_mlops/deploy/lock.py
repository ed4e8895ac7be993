"""Locked requirements for an image: every requirement at an exact version, with what it pulls in.

An image must install what the model was tested with, not whatever the index serves on build day. Requirements
come pinned (a model's ``requirements.txt`` written by MLflow, an environment's ``pip freeze``) or are pinned here
to the version installed in this Python, which is the one the endpoint worker runs; their dependencies are pinned
the same way, so the image gets this Python's versions throughout.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from jupyter_mlops.exceptions import InvalidInput

# What ``python -m jupyter_mlops.deploy.serve`` imports besides the standard library (yaml: the MLmodel file).
SERVING = ("starlette", "uvicorn", "prometheus_client", "numpy", "pyyaml")
ONNX_SERVING = ("onnxruntime",)
# The package's own source is copied into the image; MLflow is not needed to serve an ONNX flavour.
OWN = frozenset({"jupyter-mlops"})
MLFLOW = frozenset({"mlflow", "mlflow-skinny"})


def lock(pinned: Iterable[str], wanted: Iterable[str], *, origin: str, skip: frozenset[str] = frozenset()) -> list[str]:
    """``name==version`` lines: ``pinned`` as given (``origin`` names where they come from in errors), then
    ``wanted`` and every dependency of both at the version installed here, unless already pinned."""
    versions: dict[str, str] = {}
    lines: dict[str, str] = {}
    for text in pinned:
        requirement = _parse(text, origin)
        if requirement is None or canonicalize_name(requirement.name) in skip | OWN:
            continue
        key = canonicalize_name(requirement.name)
        lines[key] = _exact(requirement, origin)
        versions[key] = lines[key].split("==", 1)[1] if "==" in lines[key] else ""
    queue = [Requirement(name) for name in wanted] + [_parse(t, origin) for t in lines.values() if "==" in t]
    while queue:
        requirement = queue.pop(0)
        if requirement is None:
            continue
        key = canonicalize_name(requirement.name)
        installed = _installed(requirement.name)
        if key in skip | OWN or installed is None:
            continue
        if key not in lines:
            if not requirement.specifier.contains(installed, prereleases=True):
                continue  # another version is wanted: let pip choose it
            lines[key], versions[key] = f"{key}=={installed}", installed
        elif versions.get(key) != installed:
            continue  # pinned to another version than installed here: its dependencies are pip's to find
        for dependency in importlib.metadata.distribution(requirement.name).requires or []:
            parsed = Requirement(dependency)
            if canonicalize_name(parsed.name) not in lines and _applies(parsed, requirement.extras):
                queue.append(parsed)
    return [lines[key] for key in sorted(lines)]


def _applies(dependency: Requirement, extras: set[str]) -> bool:
    """Whether a dependency is installed here, with the extras its dependent was asked for."""
    if dependency.marker is None:
        return True
    return any(dependency.marker.evaluate({"extra": extra}) for extra in extras or {""})


def _parse(text: str, origin: str) -> Requirement | None:
    """A requirement line, or None for comments, options and requirements for another platform."""
    line = text.split(" #", 1)[0].strip()
    if not line or line.startswith("#"):
        return None
    if line.startswith("-"):
        if line.startswith(("-e", "--editable")):
            raise InvalidInput(
                f"{origin} installs {line!r} from a local folder, which an image cannot see: install that "
                "package from an index (or a wheel) in the environment and register it again."
            )
        return None  # index options: the build's pip settings decide where packages come from
    try:
        requirement = Requirement(line)
    except InvalidRequirement as exc:
        raise InvalidInput(f"{origin} has a requirement pip cannot read, {line!r}: {exc}.") from exc
    if requirement.marker is not None and not requirement.marker.evaluate():
        return None
    if requirement.url and requirement.url.startswith("file:"):
        raise InvalidInput(
            f"{origin} installs {requirement.name} from {requirement.url}, a file an image cannot see: install it "
            "from an index (or pin it as NAME==VERSION) instead."
        )
    return requirement


def _exact(requirement: Requirement, origin: str) -> str:
    """``name==version`` (or ``name @ url``): pinned as given, else to the installed version that fits."""
    key = canonicalize_name(requirement.name)
    extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
    if requirement.url:
        return f"{key}{extras} @ {requirement.url}"
    specs = list(requirement.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return f"{key}{extras}=={specs[0].version}"
    installed = _installed(requirement.name)
    if installed is None or not requirement.specifier.contains(installed, prereleases=True):
        raise InvalidInput(
            f"{origin} asks for {requirement} without an exact version, and "
            f"{'no version' if installed is None else f'version {installed}'} of it that fits is installed here "
            f"to pin it to. Pin it (e.g. {requirement.name}==VERSION) or install a version that fits."
        )
    return f"{key}{extras}=={installed}"


def _installed(name: str) -> str | None:
    try:
        return str(Version(importlib.metadata.version(name)))
    except importlib.metadata.PackageNotFoundError:
        return None
