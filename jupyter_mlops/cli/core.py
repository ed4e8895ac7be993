"""What every command group shares: the parser class, the common options, ``pairs``, ``result`` and the workspace.

Group modules import this one and never each other, so that a group can move or go without touching the rest.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from jupyter_mlops.exceptions import InvalidInput, UsageError

if TYPE_CHECKING:
    from jupyter_mlops.render import Result
    from jupyter_mlops.workspace import Workspace

Command = Callable[["Workspace", argparse.Namespace], "Result"]


class Parser(argparse.ArgumentParser):
    """Raises ``UsageError`` instead of exiting, so the magic can print the usage and carry on."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.format_usage().strip()}\n{self.prog}: error: {message}")


def pairs(values: Sequence[str] | None, what: str = "tag") -> dict[str, str]:
    """``KEY=VALUE`` arguments as a dict; a malformed one says how to write it."""
    pairs = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"Cannot read the {what} {item!r}: write it as KEY=VALUE (e.g. stage=prod).")
        pairs[key.strip()] = value.strip()
    return pairs


def result(value: Any, message: str | None = None, *, exit_code: int = 0) -> Result:
    """A command's return value (render is imported here, not at start-up, to keep ``--help`` fast)."""
    from jupyter_mlops.render import Result

    return Result(value, message, exit_code=exit_code)


def common_options() -> argparse.ArgumentParser:
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
    """Builds command groups; each group module adds its own through ``add_commands(commands)``."""

    def __init__(self, groups: Any, common: argparse.ArgumentParser) -> None:
        self._groups = groups
        self._common = common

    def group(self, name: str, help: str) -> Any:
        sub = self._groups.add_parser(name, help=help, description=help).add_subparsers(
            dest="command", metavar="COMMAND", parser_class=Parser
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


def workspace_for(args: argparse.Namespace, default: Workspace | None = None) -> Workspace:
    """The workspace a command line names, else ``default``, else the process default (the magics use it too)."""
    from jupyter_mlops.workspace import Workspace, default_workspace

    root, uri, meta = (getattr(args, k, None) for k in ("workspace", "tracking_uri", "metadata_uri"))
    if root or uri or meta:
        return Workspace(root, tracking_uri=uri, metadata_uri=meta)
    return default or default_workspace()
