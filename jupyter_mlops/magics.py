"""``%%mlops_job`` and ``%mlops``: parse the line, call the core, return something that displays."""

from __future__ import annotations

import ast
import shlex
from pathlib import Path
from typing import Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from jupyter_mlops.cli import execute, pairs, parse, workspace_for
from jupyter_mlops.exceptions import UsageError


@magics_class
class MlopsMagics(Magics):
    @magic_arguments()
    @argument("--experiment", help="MLflow experiment (default: notebooks)")
    @argument("--name", help="run name")
    @argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="run tag (repeatable)")
    @argument("--no-autolog", action="store_true", help="turn MLflow autologging off for this run")
    @argument("--workspace", metavar="DIR", help="workspace folder")
    @argument("--tracking-uri", metavar="URI", help="MLflow tracking URI")
    @cell_magic
    def mlops_job(self, line: str, cell: str) -> Any:
        """Run the cell as a tracked MLflow run; an exception fails the run and is raised into the cell."""
        args = parse_argstring(self.mlops_job, line)
        ws = workspace_for(args)  # --workspace/--tracking-uri as the CLI reads them
        job = ws.job(
            experiment=args.experiment,
            name=args.name,
            tags=pairs(args.tag),
            source=cell,
            notebook=self._notebook_path(),
            autolog=not args.no_autolog,
        )
        with job:
            return self._run(cell)

    @line_magic
    def mlops(self, line: str) -> Any:
        """``%mlops models list stage=prod``: the same subcommands as ``jupyter mlops``."""
        try:
            args = parse(shlex.split(line), prog="%mlops")
        except UsageError as exc:
            print(exc.message)
            return None
        except SystemExit:  # --help printed the usage
            return None
        result = execute(args)
        if getattr(args, "json", False):
            from jupyter_mlops.render import to_json

            print(to_json(result.value))
            return None
        return result

    def _run(self, cell: str) -> Any:
        """Execute the cell in the user namespace; the value of a final expression is returned (shown)."""
        tree = ast.parse(self.shell.transform_cell(cell))
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        namespace = self.shell.user_ns
        exec(compile(tree, "<mlops_job>", "exec"), namespace)
        if last is not None:
            return eval(compile(ast.Expression(last.value), "<mlops_job>", "eval"), namespace)
        return None

    def _notebook_path(self) -> Path | None:
        for key in ("__session__", "__vsc_ipynb_file__"):
            value = self.shell.user_ns.get(key)
            if isinstance(value, str) and value.endswith(".ipynb") and Path(value).is_file():
                return Path(value).resolve()
        return None
