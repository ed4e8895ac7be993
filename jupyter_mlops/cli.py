"""``jupyter mlops …`` and ``mlops …``: the same verbs as the ``%mlops`` magic, with ``--json`` for scripts.

The parser and the command table are shared with the magic: both faces parse a command line here, call one
core function and render what it returns.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from jupyter_mlops.exceptions import InvalidInput, MlopsError, UsageError

if TYPE_CHECKING:
    from jupyter_mlops.render import Result
    from jupyter_mlops.workspace import Workspace

Command = Callable[["Workspace", argparse.Namespace], "Result"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.format_usage().strip()}\n{self.prog}: error: {message}")


def pairs(values: Sequence[str] | None, what: str = "tag") -> dict[str, str]:
    pairs = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"Cannot read the {what} {item!r}: write it as KEY=VALUE (e.g. stage=prod).")
        pairs[key.strip()] = value.strip()
    return pairs


# -- commands -------------------------------------------------------------------------------------------------
def result(value: Any, message: str | None = None, *, exit_code: int = 0) -> Result:
    from jupyter_mlops.render import Result

    return Result(value, message, exit_code=exit_code)


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


def datasets_register(ws: Workspace, a: argparse.Namespace) -> Result:
    version = ws.datasets.register(a.name, a.path, description=a.description)
    return result(version, f"{version.name} is version {version.version} (sha256 {version.digest[:12]}).")


def datasets_list(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.datasets.list())


def datasets_show(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.datasets.get(a.name, a.version))


def datasets_usage(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.datasets.usage(a.name, a.version))


def audit(ws: Workspace, a: argparse.Namespace) -> Result:
    from jupyter_mlops.audit import audit as build
    from jupyter_mlops.audit import to_csv

    entries = build(ws, a.model)
    if a.csv:
        Path(a.csv).write_text(to_csv(entries))
    return result(entries, f"Audit of {a.model} written to {a.csv}." if a.csv else None)


def lineage(ws: Workspace, a: argparse.Namespace) -> Result:
    from jupyter_mlops.lineage import lineage as build

    node = build(ws, a.entity, depth=a.depth)
    return result(node.to_dict(), node.to_text())


def runs_list(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.runs.list(a.experiment, max_results=a.max))


def runs_show(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.runs.get(a.run_id))


# -- parser ---------------------------------------------------------------------------------------------------
def _common_options() -> argparse.ArgumentParser:
    """Options every command takes, before or after the subcommand (SUPPRESS keeps an earlier value)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--workspace", metavar="DIR", default=argparse.SUPPRESS, help="workspace folder")
    common.add_argument("--tracking-uri", metavar="URI", default=argparse.SUPPRESS, help="MLflow tracking URI")
    common.add_argument(
        "--metadata-uri", metavar="URL", default=argparse.SUPPRESS, help="metadata database (SQLAlchemy URL)"
    )
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    return common


class Commands:
    """Builds command groups; feature modules add theirs through ``add_commands(commands)``."""

    def __init__(self, groups: Any, common: argparse.ArgumentParser) -> None:
        self._groups = groups
        self._common = common

    def group(self, name: str, help: str) -> Any:
        sub = self._groups.add_parser(name, help=help, description=help).add_subparsers(
            dest="command", metavar="COMMAND", parser_class=_Parser
        )
        sub.required = True
        return sub

    def single(self, name: str, func: Command, help: str) -> argparse.ArgumentParser:
        """A command without subcommands (``jupyter mlops lineage ENTITY``)."""
        return self.command(self._groups, name, func, help)

    def command(self, group: Any, name: str, func: Command, help: str) -> argparse.ArgumentParser:
        p = group.add_parser(name, help=help, description=help, parents=[self._common])
        p.set_defaults(func=func)
        return p


# Modules that add command groups (each must import cheaply: heavy imports go inside the command functions).
FEATURE_COMMANDS: tuple[str, ...] = (
    "jupyter_mlops.environments.commands",
    "jupyter_mlops.deploy.commands",
    "jupyter_mlops.deploy.package_commands",
    "jupyter_mlops.events.commands",
    "jupyter_mlops.monitoring.commands",
    "jupyter_mlops.pipelines.commands",
)


def build_parser(prog: str = "jupyter mlops") -> argparse.ArgumentParser:
    import importlib

    common = _common_options()
    parser = _Parser(prog=prog, description="jupyter-mlops: the model lifecycle from a notebook.", parents=[common])
    groups = parser.add_subparsers(dest="group", metavar="GROUP", parser_class=_Parser)
    groups.required = True
    commands = Commands(groups, common)
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

    runs = commands.group("runs", "tracked runs")
    p = command(runs, "list", runs_list, "list recent runs")
    p.add_argument("--experiment")
    p.add_argument("--max", type=int, default=50, help="at most this many runs (default 50)")
    p = command(runs, "show", runs_show, "show one run")
    p.add_argument("run_id")
    datasets = commands.group("datasets", "versioned data assets (content-hashed, profiled, usage tracked)")
    p = command(datasets, "register", datasets_register, "register a CSV/Parquet file (same content: same version)")
    p.add_argument("name")
    p.add_argument("path")
    p.add_argument("--description")
    command(datasets, "list", datasets_list, "list dataset versions")
    p = command(datasets, "show", datasets_show, "show a dataset version and its profile")
    p.add_argument("name")
    p.add_argument("version", nargs="?")
    p = command(datasets, "usage", datasets_usage, "which runs read a dataset")
    p.add_argument("name")
    p.add_argument("version", nargs="?", type=int)

    p = commands.single("audit", audit, "who registered each version of a model, why, where it ran, how it is used")
    p.add_argument("--model", required=True)
    p.add_argument("--csv", metavar="FILE", help="also write the audit as CSV")

    p = commands.single("lineage", lineage, "where a model version, run or file came from, and what used it")
    p.add_argument("entity", help="NAME:VERSION, a run id, or a file path")
    p.add_argument("--depth", type=int, default=6)
    for module in FEATURE_COMMANDS:
        importlib.import_module(module).add_commands(commands)
    return parser


def parse(argv: Sequence[str], prog: str = "jupyter mlops") -> argparse.Namespace:
    return build_parser(prog).parse_args(list(argv))


def workspace_for(args: argparse.Namespace, default: Workspace | None = None) -> Workspace:
    """The workspace a command line names, else ``default``, else the process default."""
    from jupyter_mlops.workspace import Workspace, default_workspace

    root, uri, meta = (getattr(args, k, None) for k in ("workspace", "tracking_uri", "metadata_uri"))
    if root or uri or meta:
        return Workspace(root, tracking_uri=uri, metadata_uri=meta)
    return default or default_workspace()


def execute(args: argparse.Namespace, default: Workspace | None = None) -> Result:
    return args.func(workspace_for(args, default), args)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # stdout carries the command's output (JSON with --json): keep MLflow's "View run" links out of it
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    prog = "mlops" if sys.argv and sys.argv[0].endswith("/mlops") else "jupyter mlops"
    try:
        args = parse(argv, prog)
    except UsageError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    try:
        result = execute(args)
    except MlopsError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    if getattr(args, "json", False):
        from jupyter_mlops.render import to_json

        print(to_json(result.value))
    else:
        print(result.text())
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
