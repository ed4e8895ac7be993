"""Reusable environments: a spec (``envs/NAME.yaml`` or a conda ``environment.yml``) whose content hash is its
version, built on demand into a virtualenv with ipykernel, a lock and a kernelspec.

    from jupyter_mlops.environments import kernel_for
    kernel = kernel_for("envs/train.yaml")          # registers, builds once, returns "mlops-train-1a2b3c4d"
    papermill.execute_notebook(src, dst, kernel_name=kernel)

The module-level verbs work on the default workspace unless ``workspace=`` names another.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

from jupyter_mlops.environments.records import Environment
from jupyter_mlops.environments.service import Environments
from jupyter_mlops.environments.spec import EnvironmentSpec, load_spec
from jupyter_mlops.exceptions import BuildFailed

if TYPE_CHECKING:
    import os
    from pathlib import Path

    from jupyter_mlops.environments.build import Progress
    from jupyter_mlops.workspace import Workspace

__all__ = [
    "BuildFailed",
    "Environment",
    "EnvironmentSpec",
    "Environments",
    "build",
    "export",
    "kernel_for",
    "list",
    "load_spec",
    "register",
    "show",
]


def _service(workspace: Workspace | None) -> Environments:
    from jupyter_mlops.workspace import default_workspace

    return (workspace or default_workspace()).environments


def register(path: str | os.PathLike[str], *, workspace: Workspace | None = None) -> Environment:
    """Record the spec at ``path``; its content hash is the version."""
    return _service(workspace).register(path)


def show(name: str, version: str | None = None, *, workspace: Workspace | None = None) -> Environment:
    """The newest version of ``name``, or the one whose hash starts with ``version``."""
    return _service(workspace).show(name, version)


def build(
    name: str,
    version: str | None = None,
    *,
    workspace: Workspace | None = None,
    progress: Progress | None = None,
) -> Environment:
    """Build the venv and kernelspec (reused when the hash was built before)."""
    return _service(workspace).build(name, version, progress=progress)


def export(
    name: str,
    dockerfile_dir: str | os.PathLike[str],
    *,
    version: str | None = None,
    base_image: str | None = None,
    workspace: Workspace | None = None,
) -> Path:
    """Write a Dockerfile and ``requirements.lock`` into ``dockerfile_dir``; returns the Dockerfile."""
    return _service(workspace).export(name, dockerfile_dir, version=version, base_image=base_image)


def kernel_for(
    spec_or_name: str | os.PathLike[str], *, workspace: Workspace | None = None, progress: Progress | None = None
) -> str:
    """The kernelspec name to run a notebook in this environment (a spec file or a registered name)."""
    return _service(workspace).kernel_for(spec_or_name, progress=progress)


def list(*, workspace: Workspace | None = None) -> builtins.list[Environment]:
    """Every registered environment version."""
    return _service(workspace).list()
