"""``jupyter mlops models …``: the model registry (register, list, tag, alias, archive, delete, ONNX)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jupyter_mlops.cli.core import pairs, result
from jupyter_mlops.exceptions import UsageError

if TYPE_CHECKING:
    import argparse

    from jupyter_mlops.cli.core import Commands
    from jupyter_mlops.render import Result
    from jupyter_mlops.workspace import Workspace


def models_register(ws: Workspace, a: argparse.Namespace) -> Result:
    version = ws.models.register(a.path, a.name, tags=pairs(a.tag), description=a.description)
    return result(version, f"Registered {version.name} version {version.version}.")


def models_list(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.models.list(a.filter, include_archived=a.all))


def models_show(ws: Workspace, a: argparse.Namespace) -> Result:
    if a.version is None:
        return result(ws.models.get_model(a.name))
    return result(ws.models.get(a.name, a.version))


def models_download(ws: Workspace, a: argparse.Namespace) -> Result:
    path = ws.models.download(a.name, a.version, a.dest)
    return result({"name": a.name, "version": a.version, "path": str(path)}, f"Downloaded to {path}")


def models_tag(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.models.set_tags(a.name, a.version, pairs(a.tags)))


def models_untag(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.models.delete_tags(a.name, a.version, a.keys))


def models_alias(ws: Workspace, a: argparse.Namespace) -> Result:
    if a.delete:
        ws.models.delete_alias(a.name, a.alias)
        return result({"name": a.name, "alias": a.alias, "deleted": True}, f"Removed alias {a.alias}.")
    if a.version is None:
        raise UsageError("models alias NAME ALIAS VERSION: give the VERSION the alias should point at.")
    return result(ws.models.set_alias(a.name, a.alias, a.version))


def models_archive(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.models.archive(a.name, a.version, archived=not a.restore))


def models_delete(ws: Workspace, a: argparse.Namespace) -> Result:
    deleted = ws.models.delete(a.name, a.version, force=a.force)
    return result(
        {"name": a.name, "deleted_versions": deleted},
        f"Deleted {a.name} version(s) {', '.join(map(str, deleted))}.",
    )


def models_onnx(ws: Workspace, a: argparse.Namespace) -> Result:
    import pandas as pd

    from jupyter_mlops.deploy.onnx import convert_to_onnx

    sample = pd.read_parquet(a.sample) if a.sample.endswith(".parquet") else pd.read_csv(a.sample)
    conversion = convert_to_onnx(ws, f"{a.name}:{a.version}", sample, tolerance=a.tolerance)
    return result(
        conversion,
        f"Registered {conversion.version.name}:{conversion.version.version}, the ONNX version of "
        f"{conversion.source}: {conversion.speedup:.0f}x faster on one row, max abs difference "
        f"{conversion.max_abs_diff:.3g}.",
    )


def add_commands(commands: Commands) -> None:
    command = commands.command
    models = commands.group("models", "the model registry")
    p = command(models, "register", models_register, "register a file or folder as a new model version")
    p.add_argument("name")
    p.add_argument("path", help="a file, a folder, or a runs:/ URI")
    p.add_argument("--tag", action="append", metavar="KEY=VALUE")
    p.add_argument("--description")
    p = command(models, "list", models_list, "list model versions matching a filter")
    p.add_argument("filter", nargs="?", help="TagName=TagValue[,...] | TagName | name=PATTERN")
    p.add_argument("--all", action="store_true", help="include archived versions")
    p = command(models, "show", models_show, "show a model, or one version of it")
    p.add_argument("name")
    p.add_argument("version", nargs="?", help="a number, an alias or 'latest'")
    p = command(models, "download", models_download, "copy every file of a version into a folder")
    p.add_argument("name")
    p.add_argument("version")
    p.add_argument("dest")
    p = command(models, "tag", models_tag, "set tags on a version")
    p.add_argument("name")
    p.add_argument("version")
    p.add_argument("tags", nargs="+", metavar="KEY=VALUE")
    p = command(models, "untag", models_untag, "remove tags from a version")
    p.add_argument("name")
    p.add_argument("version")
    p.add_argument("keys", nargs="+", metavar="KEY")
    p = command(models, "alias", models_alias, "point an alias (champion, challenger...) at a version")
    p.add_argument("name")
    p.add_argument("alias")
    p.add_argument("version", nargs="?")
    p.add_argument("--delete", action="store_true", help="remove the alias")
    p = command(models, "archive", models_archive, "hide a version from listings (or --restore it)")
    p.add_argument("name")
    p.add_argument("version")
    p.add_argument("--restore", action="store_true")
    p = command(models, "delete", models_delete, "delete a version, or the whole model")
    p.add_argument("name")
    p.add_argument("version", nargs="?")
    p.add_argument("--force", action="store_true", help="also remove aliases that point at it")
    p = command(models, "onnx", models_onnx, "convert a version to ONNX, prove parity on a sample, register it")
    p.add_argument("name")
    p.add_argument("version")
    p.add_argument("--sample", required=True, help="a CSV or Parquet file of input rows (no label column)")
    p.add_argument("--tolerance", type=float, default=1e-4, help="largest accepted difference (default 1e-4)")
