"""``jupyter mlops ci …``: write a CI workflow (init) and what its job runs (run: gate, then release)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jupyter_mlops.cli.core import pairs, result

if TYPE_CHECKING:
    import argparse

    from jupyter_mlops.cli.core import Commands
    from jupyter_mlops.render import Result
    from jupyter_mlops.workspace import Workspace


def ci_init(ws: Workspace, a: argparse.Namespace) -> Result:
    from jupyter_mlops.release.workflows import init

    written = init(a.provider, a.pipeline, root=a.dir, branch=a.branch, alias=a.alias, force=a.force)
    return result(written, f"Wrote {written.path}: it runs `jupyter mlops ci run {written.pipeline}`.")


def ci_run(ws: Workspace, a: argparse.Namespace) -> Result:
    import yaml

    from jupyter_mlops.cli.pipelines import interrupted, print_progress, sigterm_as_interrupt
    from jupyter_mlops.release import ci
    from jupyter_mlops.release.thresholds import parse_threshold_option

    thresholds = dict(parse_threshold_option(t) for t in a.threshold) if a.threshold else None
    parameters = {k: yaml.safe_load(v) if v else v for k, v in pairs(a.param, "parameter").items()}
    with sigterm_as_interrupt(), interrupted():
        outcome = ci.run(
            ws,
            a.pipeline,
            model=a.model,
            data=a.data,
            targets=a.target,
            thresholds=thresholds,
            alias=a.alias,
            parameters=parameters or None,
            summary=a.summary,
            progress=print_progress,
        )
    return result(outcome, outcome.markdown(), exit_code=0 if outcome.passed else 1)


def add_commands(commands: Commands) -> None:
    from jupyter_mlops.release.workflows import PROVIDERS

    command = commands.command
    ci = commands.group("ci", "CI/CD: a workflow file, and the gate-then-release run its job does")
    p = command(ci, "init", ci_init, "write a CI workflow file whose job runs `jupyter mlops ci run`")
    p.add_argument("--provider", required=True, choices=list(PROVIDERS))
    p.add_argument("--pipeline", required=True, help="the pipeline.yaml the job runs")
    p.add_argument("--dir", help="the repository's top folder (default: the git repository of this folder)")
    p.add_argument("--branch", default="main", help="the branch whose pushes run it (default: main)")
    p.add_argument("--alias", default="champion", help="the alias to release to (default: champion)")
    p.add_argument("--force", action="store_true", help="replace an existing workflow file")
    p = command(ci, "run", ci_run, "run the pipeline, gate its candidate, promote or request approval")
    p.add_argument("pipeline", nargs="?", help="the pipeline.yaml to run (or --model for one version)")
    p.add_argument("--model", metavar="NAME:VERSION", help="gate and release this version instead of running")
    p.add_argument("--data", help="with --model: CSV/Parquet rows to evaluate it on against the alias")
    p.add_argument("--target", default="label", help="with --data: the label column (default: label)")
    p.add_argument("--threshold", action="append", metavar="METRIC:OPTION=VALUE", help="with --data (repeatable)")
    p.add_argument("--alias", default="champion", help="the alias to release to (default: champion)")
    p.add_argument("-p", "--param", action="append", metavar="KEY=VALUE", help="a pipeline parameter (YAML)")
    p.add_argument("--summary", help="append the markdown summary here (default: $GITHUB_STEP_SUMMARY when set)")
