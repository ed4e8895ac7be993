"""``jupyter mlops models …``: the model registry (register, list, tag, alias, archive, delete, ONNX) and its
release gates (evaluate, compare, approvals, promote, history)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jupyter_mlops.cli.core import pairs, result
from jupyter_mlops.exceptions import UsageError
from jupyter_mlops.tables import read_table

if TYPE_CHECKING:
    import argparse

    from jupyter_mlops.cli.core import Commands
    from jupyter_mlops.render import Result
    from jupyter_mlops.workspace import Workspace


def models_register(ws: Workspace, a: argparse.Namespace) -> Result:
    sample = read_table(a.sample, "the sample") if a.sample else None
    version = ws.models.register(a.path, a.name, tags=pairs(a.tag), description=a.description, sample=sample)
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
    from jupyter_mlops.deploy.onnx import convert_to_onnx

    sample = read_table(a.sample, "the sample")
    conversion = convert_to_onnx(ws, f"{a.name}:{a.version}", sample, tolerance=a.tolerance)
    return result(
        conversion,
        f"Registered {conversion.version.name}:{conversion.version.version}, the ONNX version of "
        f"{conversion.source}: {conversion.speedup:.0f}x faster on one row, max abs difference "
        f"{conversion.max_abs_diff:.3g}.",
    )


def models_evaluate(ws: Workspace, a: argparse.Namespace) -> Result:
    from jupyter_mlops.release.thresholds import parse_threshold_option

    thresholds = dict(parse_threshold_option(t) for t in a.threshold) if a.threshold else None
    baseline = None if a.baseline.lower() == "none" else a.baseline
    config = {k: _literal(v) for k, v in pairs(a.evaluator_config, "evaluator option").items()}
    gate = ws.models.evaluate(
        a.candidate,
        a.data,
        baseline=baseline,
        targets=a.target,
        thresholds=thresholds,
        model_type=a.model_type,
        evaluator_config=config,
    )
    return result(gate.to_dict(), str(gate), exit_code=0 if gate.passed else 1)


def models_compare(ws: Workspace, a: argparse.Namespace) -> Result:
    report = ws.models.compare(a.a, a.b, unchanged=a.all)
    return result(report.to_dict(), str(report))


def _literal(text: str) -> object:
    """``true``, ``3``, ``0.5`` as JSON reads them; anything else stays a string (``pos_label=yes``)."""
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text


def models_approval(ws: Workspace, a: argparse.Namespace) -> Result:
    verb = {"request-approval": "request_approval", "approve": "approve", "reject": "reject"}[a.command]
    text = {"reason": a.reason} if verb == "request_approval" else {"comment": a.comment}
    return result(getattr(ws.models, verb)(a.name, a.version, **text))


def models_promote(ws: Workspace, a: argparse.Namespace) -> Result:
    done = ws.models.promote(a.name, a.version, alias=a.alias, reason=a.reason)
    before = "nothing" if done.previous_version is None else f"version {done.previous_version}"
    moved = f"{done.alias} now points at {done.version} (was {before})" if done.moved else "nothing to move"
    return result(done, f"{done.model}@{done.alias}: {moved}.")


def models_history(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.models.history(a.name, a.alias))


def add_commands(commands: Commands) -> None:
    command = commands.command
    models = commands.group("models", "the model registry")
    p = command(models, "register", models_register, "register a file or folder as a new model version")
    p.add_argument("name")
    p.add_argument("path", help="a file, a folder, or a runs:/ URI")
    p.add_argument("--tag", action="append", metavar="KEY=VALUE")
    p.add_argument("--description")
    p.add_argument(
        "--sample", help="a CSV or Parquet file of input rows: a scikit-learn model is also registered as proven ONNX"
    )
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
    p = command(models, "evaluate", models_evaluate, "gate a version: score it and its baseline, compare, record")
    p.add_argument("candidate", help="NAME:VERSION")
    p.add_argument("--data", required=True, help="a CSV or Parquet file with the features and the target column")
    p.add_argument("--baseline", default="champion", help="an alias, NAME:VERSION, or none (default champion)")
    p.add_argument("--target", default="label", help="the column of true values (default label)")
    p.add_argument(
        "--threshold", action="append", metavar="METRIC:OPTION=VALUE", help="e.g. accuracy_score:min_absolute_change=0"
    )
    p.add_argument("--model-type", choices=("classifier", "regressor"), help="when the model does not say")
    p.add_argument(
        "--evaluator-config", action="append", metavar="KEY=VALUE", help="MLflow's evaluator option, e.g. pos_label=1"
    )
    p = command(models, "compare", models_compare, "what differs between two versions: params, data, code, notebook")
    p.add_argument("a", help="NAME:VERSION or NAME@ALIAS")
    p.add_argument("b", help="NAME:VERSION, NAME@ALIAS, or a version number of the same model")
    p.add_argument("--all", action="store_true", help="also list what is the same (parameters, metrics, packages)")
    for verb, text, help in (
        ("request-approval", "reason", "ask for a version's approval (PendingApproval)"),
        ("approve", "comment", "approve a pending version"),
        ("reject", "comment", "reject a pending version, or revoke its approval"),
    ):
        p = command(models, verb, models_approval, help)
        p.add_argument("name")
        p.add_argument("version")
        p.add_argument(f"--{text}")
    p = command(models, "promote", models_promote, "move a protected alias to a version, as the policy allows")
    p.add_argument("name")
    p.add_argument("version")
    p.add_argument("--alias", default="champion")
    p.add_argument("--reason", help="why (kept in the event log)")
    p = command(models, "history", models_history, "every move of an alias: who, when, why")
    p.add_argument("name")
    p.add_argument("--alias", help="one alias (default: all)")
