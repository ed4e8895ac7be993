"""``jupyter mlops env register|list|show|build|export``: parse, call the environments service, return a Result."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from jupyter_mlops.cli.core import result

if TYPE_CHECKING:
    import argparse

    from jupyter_mlops.cli.core import Commands
    from jupyter_mlops.environments.service import Environments
    from jupyter_mlops.render import Result
    from jupyter_mlops.workspace import Workspace


def _service(ws: Workspace) -> Environments:
    from jupyter_mlops.environments.service import Environments

    return Environments(ws)


def _progress(message: str) -> None:
    """Build steps go to stderr: stdout carries the result (JSON with --json)."""
    print(message, file=sys.stderr, flush=True)


def env_register(ws: Workspace, a: argparse.Namespace) -> Result:
    record = _service(ws).register(a.path)
    return result(record, f"Registered environment {record.name} version {record.short_version}.")


def env_list(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(_service(ws).list())


def env_show(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(_service(ws).show(a.name, a.version))


def env_build(ws: Workspace, a: argparse.Namespace) -> Result:
    record = _service(ws).build(a.name, a.version, progress=_progress)
    return result(record, f"Environment {record.name} is ready: kernel {record.kernel_name}.")


def env_export(ws: Workspace, a: argparse.Namespace) -> Result:
    service = _service(ws)
    dockerfile = service.export(a.name, a.dockerfile, version=a.version, base_image=a.base_image, progress=_progress)
    record = service.show(a.name, a.version)
    value = {
        "name": record.name,
        "version": record.version,
        "dockerfile": str(dockerfile),
        "lock": str(dockerfile.parent / "requirements.lock"),
    }
    return result(value, f"Wrote {dockerfile} and {value['lock']}.")


def env_remove(ws: Workspace, a: argparse.Namespace) -> Result:
    record = _service(ws).remove(a.name, a.version)
    return result(
        {"name": record.name, "version": record.version, "removed": True},
        f"Removed environment {record.name} version {record.short_version} (venv, kernelspec and record).",
    )


def add_commands(commands: Commands) -> None:
    command = commands.command
    env = commands.group("env", "reusable environments (venv + kernelspec) from envs/NAME.yaml specs")
    p = command(env, "register", env_register, "record an environment spec (its content hash is its version)")
    p.add_argument("path", help="envs/NAME.yaml or a conda environment.yml")
    command(env, "list", env_list, "list registered environments")
    p = command(env, "show", env_show, "show an environment (its newest version, or --version)")
    p.add_argument("name")
    p.add_argument("--version", metavar="HASH", help="the version's hash, or its first characters")
    p = command(env, "build", env_build, "build the venv and kernelspec (reused when built before)")
    p.add_argument("name")
    p.add_argument("--version", metavar="HASH", help="the version's hash, or its first characters")
    p = command(env, "export", env_export, "write a Dockerfile and requirements.lock for the environment")
    p.add_argument("name")
    p.add_argument("--dockerfile", metavar="DIR", required=True, help="the folder to write them into")
    p.add_argument("--version", metavar="HASH", help="the version's hash, or its first characters")
    p.add_argument("--base-image", metavar="IMAGE", help="default: python:X.Y-slim")
    p = command(env, "remove", env_remove, "delete an environment version: its venv, kernelspec and record")
    p.add_argument("name")
    p.add_argument("--version", metavar="HASH", help="the version's hash, or its first characters")
