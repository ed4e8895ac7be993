"""``mlops.compare("churn:3", "churn:4")``: what differs between two model versions, read from what their runs
recorded: parameters and metrics, the datasets and input files they trained on (digests and profiles), the
environment (``environment/requirements.txt`` of a job, else the model's own ``requirements.txt``), the git
commits (and their diff when a local clone holds both) and the training notebooks cell by cell (nbdime aligns
the cells). A version registered from a file has no run: what it lacks is said in ``missing``.
"""

from __future__ import annotations

import contextlib
import difflib
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops import _mlflow
from jupyter_mlops.exceptions import InvalidInput, NotFound
from jupyter_mlops.refs import ModelRef
from jupyter_mlops.release.comparison import (
    CellChange,
    Code,
    Comparison,
    DataChange,
    DataSide,
    Environment,
    NotebookDiff,
    ValueChange,
    VersionSide,
)

if TYPE_CHECKING:
    from jupyter_mlops.records import ModelVersion
    from jupyter_mlops.workspace import Workspace

REQUIREMENTS_ARTIFACT = "environment/requirements.txt"  # what a job records (jobs.py)
DIFF_ARTIFACT = "code/uncommitted.diff"
INPUT_HASH, INPUT_PATH = "mlops.input.", "mlops.input_path."  # a pipeline step's input files (lineage.py)
COMMIT_TAG, DIRTY_TAG, PYTHON_TAG = "mlflow.source.git.commit", "mlops.git_dirty", "mlops.python_version"
MAX_DIFF_BYTES = 2_000_000


def compare(ws: Workspace, a: str, b: str, *, unchanged: bool = False) -> Comparison:
    """What differs between versions ``a`` and ``b`` (``NAME:VERSION``, ``NAME@ALIAS``; ``b`` may be a bare
    version of ``a``'s model). ``unchanged`` lists what is the same too."""
    va = _version(ws, a, None)
    vb = _version(ws, b, va.name)
    if (va.name, va.version) == (vb.name, vb.version):
        raise InvalidInput(
            f"{a} and {b} are both {va.name}:{va.version}: compare two different versions.",
            version=f"{va.name}:{va.version}",
        )
    missing: list[str] = []
    runs = [_run(ws, v, missing) for v in (va, vb)]
    same: dict[str, int] = {}
    params = _values("params", [dict(r.data.params) if r else None for r in runs], unchanged, same)
    metrics = _values("metrics", [dict(r.data.metrics) if r else None for r in runs], unchanged, same)
    data = _data(ws, runs, unchanged, same)
    environment = _environment(ws, (va, vb), runs, unchanged, same, missing)
    code = _code(ws, runs)
    notebook = _notebook(ws, runs)
    if any(r is None for r in runs):
        side = " and ".join(f"{v.name}:{v.version}" for v, r in zip((va, vb), runs, strict=True) if r is None)
        missing.append(
            f"{side}: no training run (registered from a file), so no parameters, metrics, training data, code or "
            "notebook on that side."
        )
    if code.note and not code.diff:
        missing.append(f"code diff: {code.note}")
    if notebook.note:
        missing.append(f"notebook: {notebook.note}")
    return Comparison(
        a=_side(va, runs[0]),
        b=_side(vb, runs[1]),
        params=params,
        metrics=metrics,
        data=data,
        environment=environment,
        code=code,
        notebook=notebook,
        same=same,
        missing=missing,
    )


# -- the versions and their runs -----------------------------------------------------------------------------------
def _version(ws: Workspace, text: str, model: str | None) -> ModelVersion:
    text = str(text).strip()
    if model is not None and text.isdigit():
        text = f"{model}:{text}"
    ref = ModelRef.parse(text)
    return ws.models.get(ref.name, ref.selector)


def _run(ws: Workspace, version: ModelVersion, missing: list[str]) -> Any | None:
    """The run that trained ``version``; None for a file registered outside a job (its run only holds the
    upload) or a deleted run."""
    from jupyter_mlops.registry import REGISTRATION_EXPERIMENT

    if not version.run_id:
        return None
    try:
        with _mlflow.translated_errors(f"run {version.run_id}"):
            run = ws.client.get_run(version.run_id)
            experiment = ws.client.get_experiment(run.info.experiment_id)
    except NotFound:
        missing.append(f"{version.name}:{version.version}: its run {version.run_id} was deleted.")
        return None
    return None if experiment.name == REGISTRATION_EXPERIMENT else run


def _side(version: ModelVersion, run: Any | None) -> VersionSide:
    return VersionSide(
        ref=f"{version.name}:{version.version}",
        aliases=list(version.aliases),
        run_id=run.info.run_id if run else None,
        run_name=run.info.run_name if run else None,
        source=version.source,
        created_at=version.created_at,
    )


def _values(
    section: str, sides: list[dict[str, Any] | None], unchanged: bool, same: dict[str, int]
) -> list[ValueChange]:
    """Both sides' values by name, differing first: None on a side that lacks the name (or has no run)."""
    a, b = (s or {} for s in sides)
    rows = [ValueChange(k, a.get(k), b.get(k), a.get(k) != b.get(k)) for k in sorted(set(a) | set(b))]
    same[section] = sum(not r.changed for r in rows)
    return [r for r in rows if r.changed or unchanged]


# -- training data ---------------------------------------------------------------------------------------------------
def _data(ws: Workspace, runs: list[Any | None], unchanged: bool, same: dict[str, int]) -> list[DataChange]:
    sides = [_inputs(ws, r) if r else {} for r in runs]
    rows = []
    for name in sorted(set(sides[0]) | set(sides[1])):
        (a, pa), (b, pb) = sides[0].get(name, (None, None)), sides[1].get(name, (None, None))
        changed = a is None or b is None or (a.ref, a.digest) != (b.ref, b.digest)
        rows.append(DataChange(name, a, b, changed, _profile_notes(pa, pb) if a and b and changed else []))
    same["data"] = sum(not r.changed for r in rows)
    return [r for r in rows if r.changed or unchanged]


def _inputs(ws: Workspace, run: Any) -> dict[str, tuple[DataSide, dict[str, Any] | None]]:
    """The registered datasets a run read (with their profiles), MLflow's dataset inputs, and a pipeline step's
    input files, by name."""
    found: dict[str, tuple[DataSide, dict[str, Any] | None]] = {}
    for name, version in _dataset_usage(ws, run.info.run_id):
        try:
            record = ws.datasets.get(name, version)
        except NotFound:
            found[name] = (DataSide(f"{name}:{version}", None), None)
            continue
        profile = record.profile or {}
        columns = list(profile.get("columns", {}))
        found[name] = (DataSide(f"{name}:{version}", record.digest, profile.get("rows"), columns), profile)
    registered = {side.ref for side, _ in found.values()}
    for inp in run.inputs.dataset_inputs if run.inputs else []:
        ds = inp.dataset
        if ds.name in registered:  # the MLflow input a job logs for a registered dataset it loaded
            continue
        found.setdefault(ds.name.split(":")[0], (DataSide(ds.name, ds.digest), None))
    tags = run.data.tags
    for key, value in tags.items():
        if key.startswith(INPUT_HASH) and value:
            name = key[len(INPUT_HASH) :]
            found.setdefault(f"input:{name}", (DataSide(tags.get(INPUT_PATH + name, name), value), None))
    return found


def _dataset_usage(ws: Workspace, run_id: str) -> list[tuple[str, int]]:
    from sqlalchemy import select

    from jupyter_mlops.store.datasets import DatasetUsageRecord

    with ws.store.session() as session:
        rows = session.execute(
            select(DatasetUsageRecord.name, DatasetUsageRecord.version).where(DatasetUsageRecord.run_id == run_id)
        ).all()
    return sorted({(name, version) for name, version in rows})


def _profile_notes(a: dict[str, Any] | None, b: dict[str, Any] | None) -> list[str]:
    """How the profile moved: rows, columns added or removed, dtypes, and per column the mean, std and nulls."""
    if not a or not b:
        return []
    notes = []
    if a.get("rows") != b.get("rows"):
        notes.append(f"rows {_n(a.get('rows'))} → {_n(b.get('rows'))}")
    ca, cb = a.get("columns", {}), b.get("columns", {})
    if added := [c for c in cb if c not in ca]:
        notes.append(f"columns added: {', '.join(added)}")
    if removed := [c for c in ca if c not in cb]:
        notes.append(f"columns removed: {', '.join(removed)}")
    for column in (c for c in ca if c in cb):
        x, y = ca[column], cb[column]
        if x.get("dtype") != y.get("dtype"):
            notes.append(f"{column}: dtype {x.get('dtype')} → {y.get('dtype')}")
        for stat in ("mean", "std", "nulls", "distinct"):
            if stat in x and stat in y and x[stat] != y[stat] and not _close(x[stat], y[stat]):
                notes.append(f"{column}: {stat} {_n(x[stat])} → {_n(y[stat])}")
    return notes


def _close(x: Any, y: Any) -> bool:
    try:
        return abs(float(x) - float(y)) <= 1e-9 * max(1.0, abs(float(x)))
    except (TypeError, ValueError):
        return False


def _n(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


# -- environment -----------------------------------------------------------------------------------------------------
def _environment(
    ws: Workspace,
    versions: tuple[ModelVersion, ModelVersion],
    runs: list[Any | None],
    unchanged: bool,
    same: dict[str, int],
    missing: list[str],
) -> Environment:
    lists, sources = [], []
    for version, run in zip(versions, runs, strict=True):
        text, source = _requirements(ws, version, run)
        lists.append(_pins(text) if text is not None else None)
        sources.append(source)
        if text is None:
            missing.append(
                f"{version.name}:{version.version}: no recorded packages (no run environment, and the "
                "model has no requirements.txt)."
            )
    packages = _values("packages", lists, unchanged, same) if all(p is not None for p in lists) else []
    if not all(p is not None for p in lists):
        same["packages"] = 0
    pythons = [run.data.tags.get(PYTHON_TAG) if run else None for run in runs]
    return Environment(pythons[0], pythons[1], sources[0], sources[1], packages)


def _requirements(ws: Workspace, version: ModelVersion, run: Any | None) -> tuple[str | None, str | None]:
    """The run's full environment (a job's), else the model's own requirements.txt; (None, None): neither."""
    with tempfile.TemporaryDirectory(prefix="mlops-compare-") as tmp:
        if run is not None:
            with contextlib.suppress(Exception):
                path = ws.client.download_artifacts(run.info.run_id, REQUIREMENTS_ARTIFACT, tmp)
                return Path(path).read_text(), f"run:{REQUIREMENTS_ARTIFACT}"
        with contextlib.suppress(Exception):
            import mlflow.artifacts

            with _mlflow.quiet("mlflow"):
                uri = ws.client.get_model_version_download_uri(version.name, str(version.version))
                path = mlflow.artifacts.download_artifacts(
                    artifact_uri=f"{uri.rstrip('/')}/requirements.txt", dst_path=tmp, tracking_uri=ws.tracking_uri
                )
            return Path(path).read_text(), "model:requirements.txt"
    return None, None


def _pins(text: str) -> dict[str, str]:
    """``name==1.2`` (or any specifier) lines by normalised name; options, comments and URLs are skipped."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        spec = str(req.specifier)
        pins[canonicalize_name(req.name)] = spec[2:] if spec.startswith("==") and "," not in spec else spec or "*"
    return pins


# -- code ------------------------------------------------------------------------------------------------------------
def _code(ws: Workspace, runs: list[Any | None]) -> Code:
    tags = [r.data.tags if r else {} for r in runs]
    ca, cb = (t.get(COMMIT_TAG) for t in tags)
    da, db = (t.get(DIRTY_TAG) == "true" for t in tags)
    if not ca or not cb:
        which = " and ".join(s for s, c in (("a", ca), ("b", cb)) if not c)
        return Code(ca, cb, da, db, note=f"no git commit recorded for side {which} (not run from a git checkout)")
    repo = _repository(ws, runs, (ca, cb))
    if repo is None:
        return Code(ca, cb, da, db, note="no local clone holds both commits: fetch them to see the diff")
    if ca == cb:
        note = "the same commit" + (
            " (with uncommitted changes: see each run's code/uncommitted.diff)" if da or db else ""
        )
        return Code(ca, cb, da, db, repository=str(repo), note=note)
    stat = _git(repo, "diff", "--stat", ca, cb) or ""
    diff = _git(repo, "diff", ca, cb) or ""
    if len(diff) > MAX_DIFF_BYTES:
        diff = diff[:MAX_DIFF_BYTES] + "\n... (cut)"
    return Code(
        ca,
        cb,
        da,
        db,
        repository=str(repo),
        stat=stat.rstrip() or None,
        diff=diff or None,
        note=None if diff else "the commits differ but their trees are the same",
    )


def _repository(ws: Workspace, runs: list[Any | None], commits: tuple[str, str]) -> Path | None:
    """The first local clone that holds both commits: where the notebooks or pipelines ran, the workspace, here."""
    folders: list[Path] = []
    for run in runs:
        for key in ("mlflow.source.name", "mlops.pipeline.spec_path"):
            value = run.data.tags.get(key) if run else None
            if value and not value.startswith("<"):
                folders.append(Path(value).parent)
    folders += [Path(ws.root), Path.cwd()]
    seen: set[str] = set()
    for folder in folders:
        if not folder.is_dir():
            continue
        top = (_git(folder, "rev-parse", "--show-toplevel") or "").strip()
        if not top or top in seen:
            continue
        seen.add(top)
        if all(_git(Path(top), "cat-file", "-e", f"{c}^{{commit}}") is not None for c in commits):
            return Path(top)
    return None


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


# -- notebooks -------------------------------------------------------------------------------------------------------
def _notebook(ws: Workspace, runs: list[Any | None]) -> NotebookDiff:
    from jupyter_mlops.run_code import run_code

    codes = [run_code(ws, r.info.run_id) if r else None for r in runs]
    artifacts = [c.notebook_artifact if c else None for c in codes]
    books = [c.notebook if c else None for c in codes]
    if books[0] is None or books[1] is None:
        which = " and ".join(s for s, nb in (("a", books[0]), ("b", books[1])) if nb is None)
        return NotebookDiff(artifacts[0], artifacts[1], [], note=f"no notebook logged by the run of side {which}")
    try:
        import nbdime
        import nbformat
    except ImportError:
        return NotebookDiff(
            artifacts[0], artifacts[1], [], note="nbdime is not installed: pip install 'jupyter-mlops[compare]'"
        )
    a, b = (nbformat.from_dict(nb) for nb in books)
    diff = nbdime.diff_notebooks(a, b)
    return NotebookDiff(artifacts[0], artifacts[1], cell_changes(a.get("cells", []), b.get("cells", []), diff))


def cell_changes(cells_a: list[Any], cells_b: list[Any], diff: list[Any]) -> list[CellChange]:
    """nbdime's diff of two notebooks as one change per cell: added, removed, or patched (source first; a cell
    whose metadata or execution count alone moved is the same cell)."""
    ops = next((e.get("diff", []) for e in diff if e.get("key") == "cells" and e.get("op") == "patch"), [])
    changes: list[CellChange] = []
    ib_shift = 0  # index in b = index in a + cells added - cells removed so far
    for op in sorted(ops, key=lambda e: (e["key"], e["op"] != "addrange")):
        i = op["key"]
        if op["op"] == "addrange":
            for k, cell in enumerate(op["valuelist"]):
                j = i + ib_shift + k
                changes.append(CellChange("added", cell.get("cell_type", "code"), None, j, None, _src(cell)))
            ib_shift += len(op["valuelist"])
        elif op["op"] == "removerange":
            for k in range(op["length"]):
                cell = cells_a[i + k]
                changes.append(CellChange("removed", cell.get("cell_type", "code"), i + k, None, _src(cell), None))
            ib_shift -= op["length"]
        elif op["op"] == "patch":
            keys = {e.get("key") for e in op.get("diff", [])}
            ca, cb = cells_a[i], cells_b[i + ib_shift]
            if "source" in keys:
                lines = difflib.unified_diff(_src(ca).splitlines(), _src(cb).splitlines(), lineterm="", n=2)
                body = [line for line in lines if not line.startswith(("---", "+++"))]
                changes.append(
                    CellChange("modified", cb.get("cell_type", "code"), i, i + ib_shift, _src(ca), _src(cb), body)
                )
            elif "outputs" in keys:
                changes.append(CellChange("outputs", cb.get("cell_type", "code"), i, i + ib_shift, _src(ca), _src(cb)))
    return changes


def _src(cell: Any) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


__all__ = ["cell_changes", "compare"]
