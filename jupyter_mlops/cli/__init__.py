"""``jupyter mlops …`` and ``mlops …``: the same verbs as the ``%mlops`` magic, with ``--json`` for scripts.

The parser and the command table are shared with the magic: both faces parse a command line here, call one
core function and render what it returns. Each command group is one module of this package; the table below
is the whole list, so no feature package needs to know the CLI exists.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from jupyter_mlops.cli import (
    audit,
    automations,
    ci,
    datasets,
    endpoints,
    environments,
    events,
    export,
    lineage,
    models,
    monitors,
    package,
    pipelines,
    policy,
    rollouts,
    runs,
)
from jupyter_mlops.cli.core import Commands, Parser, common_options, pairs, result, workspace_for
from jupyter_mlops.exceptions import MlopsError, UsageError

if TYPE_CHECKING:
    import argparse

    from jupyter_mlops.render import Result
    from jupyter_mlops.workspace import Workspace

__all__ = ["COMMAND_GROUPS", "build_parser", "execute", "main", "pairs", "parse", "result", "workspace_for"]

# Every command group, in the order ``--help`` lists them (each module imports cheaply: heavy imports go inside
# the command functions, so that ``--help`` and the magic's ``%load_ext`` stay fast).
COMMAND_GROUPS: tuple[Callable[[Commands], None], ...] = (
    models.add_commands,
    policy.add_commands,  # the release policy; models evaluate|promote|history are in models
    runs.add_commands,
    datasets.add_commands,
    audit.add_commands,
    lineage.add_commands,
    environments.add_commands,
    endpoints.add_commands,  # endpoints and batch
    rollouts.add_commands,
    package.add_commands,
    events.add_commands,
    automations.add_commands,
    monitors.add_commands,
    export.add_commands,
    pipelines.add_commands,
    ci.add_commands,
)


def build_parser(prog: str = "jupyter mlops") -> argparse.ArgumentParser:
    common = common_options()
    parser = Parser(prog=prog, description="jupyter-mlops: the model lifecycle from a notebook.", parents=[common])
    groups = parser.add_subparsers(dest="group", metavar="GROUP", parser_class=Parser)
    groups.required = True
    commands = Commands(groups, common)
    for add_commands in COMMAND_GROUPS:
        add_commands(commands)
    return parser


def parse(argv: Sequence[str], prog: str = "jupyter mlops") -> argparse.Namespace:
    return build_parser(prog).parse_args(list(argv))


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
