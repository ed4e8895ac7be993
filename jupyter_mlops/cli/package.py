"""``jupyter mlops package MODEL --out DIR``: a Docker build context for a model, its image, a KServe manifest."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from jupyter_mlops.cli.core import result
from jupyter_mlops.cli.endpoints import add_resource_flags
from jupyter_mlops.deploy.resources import from_flags

if TYPE_CHECKING:
    from jupyter_mlops.cli.core import Commands
    from jupyter_mlops.render import Result
    from jupyter_mlops.workspace import Workspace


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def package(ws: Workspace, a: argparse.Namespace) -> Result:
    from jupyter_mlops.deploy.package import package as build_context

    packaged = build_context(
        ws,
        a.model,
        out=a.out,
        environment=a.environment,
        scoring_script=a.scoring_script,
        name=a.name,
        onnx=not a.no_onnx,
        build=a.build,
        tag=a.tag,
        base=a.base,
        host_ca=a.host_ca,
        kserve=a.kserve,
        endpoint=a.endpoint,
        resources=from_flags(a.cpu, a.memory, a.gpu),
        progress=None if getattr(a, "json", False) else _progress,
    )
    lines = [f"Wrote the build context of {packaged.model} to {packaged.folder}."]
    if packaged.image_id:
        lines.append(f"Built {packaged.image} ({packaged.image_id[:19]}): docker run --network host {packaged.image}")
    if packaged.manifest:
        lines.append(f"Wrote {packaged.manifest} for image {packaged.image} (push it where the cluster pulls from).")
    return result(packaged, "\n".join(lines))


def add_commands(commands: Commands) -> None:
    p = commands.single("package", package, "a Docker build context (and image, KServe manifest) for a model")
    p.add_argument("model", help="NAME:VERSION, models:/NAME/VERSION or models:/NAME@ALIAS")
    p.add_argument("--out", required=True, metavar="DIR", help="a new or empty folder for the build context")
    p.add_argument("--scoring-script", help="score.py with init() and run(raw_data); its folder is copied too")
    p.add_argument("--environment", metavar="NAME[:VERSION]", help="install this environment's lock")
    p.add_argument("--name", help="the deployment's name in the image (default: the model's name)")
    p.add_argument("--no-onnx", action="store_true", help="serve the version itself, not its ONNX conversion")
    p.add_argument("--build", action="store_true", help="build the image (needs a Docker engine, see DOCKER_HOST)")
    p.add_argument("--tag", help="the image's tag (default NAME:VERSION)")
    p.add_argument("--base", metavar="IMAGE", help="build FROM this image instead of python:X.Y-slim")
    p.add_argument(
        "--host-ca", action="store_true", help="let pip in the build trust this host's CA bundle and index settings"
    )
    p.add_argument("--kserve", action="store_true", help="also write a KServe InferenceService manifest")
    p.add_argument("--endpoint", help="with --kserve: the canary share (and resources) from this endpoint's deployment")
    add_resource_flags(p, "for the container (default: the --endpoint deployment's)")
