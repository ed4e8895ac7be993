"""``make demo``: run every tutorial notebook headless, then show where the runs, models and notebooks went.

The notebooks ``notebooks/[0-9]*.ipynb`` run in order with papermill, in the notebooks folder, against the
workspace named by ``MLOPS_WORKSPACE`` (default: ``mlops-workspace/`` at the repository root). The executed
copies go to ``<workspace>/demo/``. A failing notebook stops the demo with exit status 1.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from papermill.exceptions import PapermillExecutionError

    from jupyter_mlops import Workspace

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
NOTEBOOK_PATTERN = "[0-9]*.ipynb"
KERNEL = "python3"
MAX_RUNS = 50_000  # MLflow's largest page of runs: the count shows "50000+" beyond it


def resolve_workspace() -> Path:
    """The workspace folder, pinned in ``MLOPS_WORKSPACE`` so that the notebook kernels use the same one."""
    root = Path(os.environ.get("MLOPS_WORKSPACE") or REPO / "mlops-workspace").expanduser().resolve()
    os.environ["MLOPS_WORKSPACE"] = str(root)
    return root


def find_notebooks(folder: Path = NOTEBOOKS) -> list[Path]:
    """The tutorial notebooks, in the order their numbers give."""
    return sorted(folder.glob(NOTEBOOK_PATTERN))


def run_notebooks(notebooks: list[Path], out_dir: Path) -> list[Path]:
    """Execute each notebook with papermill; return the executed copies. Exits with status 1 on a failure."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    out_dir.mkdir(parents=True, exist_ok=True)
    executed = []
    for index, notebook in enumerate(notebooks, start=1):
        output = out_dir / notebook.name
        print(f"[{index}/{len(notebooks)}] {display(notebook)} -> {display(output)}", flush=True)
        try:
            papermill.execute_notebook(
                str(notebook), str(output), kernel_name=KERNEL, cwd=str(notebook.parent), progress_bar=True
            )
        except PapermillExecutionError as exc:
            fail(notebook, output, exc)
        executed.append(output)
    return executed


def fail(notebook: Path, output: Path, exc: PapermillExecutionError) -> NoReturn:
    """Say which notebook and cell failed and where the executed copy is, then exit with status 1."""
    first_line = next((line for line in str(exc.source or "").splitlines() if line.strip()), "")
    where = f"cell {exc.cell_index + 1}" if isinstance(exc.cell_index, int) else "a cell"
    if exc.exec_count is not None:
        where += f" (In [{exc.exec_count}])"
    error = ": ".join(part for part in (exc.ename, exc.evalue) if part)
    print(
        f"\nDemo failed: notebook {display(notebook)} raised an error in {where}.\n"
        f"  cell starts with: {first_line}\n"
        f"  error:            {error or 'unknown'}\n"
        f"  executed copy (outputs and traceback up to the failure): {display(output)}",
        file=sys.stderr,
    )
    sys.exit(1)


def summarize(ws: Workspace, executed: list[Path]) -> str:
    """Where everything went, and the commands to look at it."""
    runs = ws.runs.list(max_results=MAX_RUNS)
    per_experiment = Counter(run.experiment for run in runs)
    run_count = f"{len(runs)}+" if len(runs) >= MAX_RUNS else str(len(runs))
    versions: defaultdict[str, list[int]] = defaultdict(list)
    for version in ws.models.list(include_archived=True):
        versions[version.name].append(version.version)

    lines = [
        "",
        f"Demo finished: {len(executed)} notebook(s) ran.",
        "",
        f"Workspace:     {ws.root}",
        f"Tracking URI:  {ws.tracking_uri}",
        f"Artifacts:     {ws.artifact_root}",
        f"Runs:          {run_count}"
        + (f" ({', '.join(f'{name}: {n}' for name, n in sorted(per_experiment.items()))})" if runs else ""),
        "Models:" + ("" if versions else "        none"),
    ]
    for model in ws.models.list_models():
        numbers = sorted(versions.get(model.name, []))
        aliases = ", ".join(f"{alias} -> {v}" for alias, v in sorted(model.aliases.items())) or "none"
        lines.append(
            f"  {model.name}: {len(numbers)} version(s) ({ranges(numbers) or '-'}), "
            f"latest {model.latest_version}, aliases: {aliases}"
        )
    lines += ["Executed notebooks:", *(f"  {display(path)}" for path in executed), "", "Look at them:"]
    bin_dir = Path(sys.executable).parent
    if ws.is_local:
        mlflow_ui = [
            display(bin_dir / "mlflow"),
            "ui",
            "--backend-store-uri",
            ws.tracking_uri,
            "--default-artifact-root",
            str(ws.artifact_root),
        ]
        lines.append(f"  MLflow UI:   {shlex.join(mlflow_ui)}")
    else:
        lines.append(f"  MLflow UI:   open {ws.tracking_uri}")
    lines += [
        f"  JupyterLab:  {lab_command(ws)}",
        f"  CLI:         {shlex.join([display(bin_dir / 'jupyter'), 'mlops', 'models', 'list', *workspace_args(ws)])}",
        f"               {shlex.join([display(bin_dir / 'jupyter'), 'mlops', 'runs', 'list', *workspace_args(ws)])}",
    ]
    return "\n".join(lines)


def lab_command(ws: Workspace) -> str:
    """``make lab``, naming the workspace when it is not the repository's default one."""
    if ws.root == (REPO / "mlops-workspace").resolve():
        return "make lab"
    return shlex.join(["make", "lab", f"WORKSPACE={ws.root}"])


def workspace_args(ws: Workspace) -> list[str]:
    """The CLI options that name this workspace."""
    args = ["--workspace", str(ws.root)]
    return args if ws.is_local else [*args, "--tracking-uri", ws.tracking_uri]


def ranges(numbers: list[int]) -> str:
    """``[1, 2, 3, 5]`` -> ``"1-3, 5"``."""
    parts: list[str] = []
    start: int | None = None
    previous: int | None = None
    for n in [*numbers, None]:
        if n is not None and previous is not None and n == previous + 1:
            previous = n
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = n
    return ", ".join(parts)


def display(path: Path) -> str:
    """A path relative to the current folder when it is inside it, else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main() -> int:
    """Run the notebooks, then print the summary."""
    root = resolve_workspace()
    notebooks = find_notebooks()
    if not notebooks:
        print(f"No notebooks match {display(NOTEBOOKS / NOTEBOOK_PATTERN)}: nothing to run.", file=sys.stderr)
        return 1
    print(f"Running {len(notebooks)} notebook(s) against the workspace {root}", flush=True)
    executed = run_notebooks(notebooks, root / "demo")

    from jupyter_mlops import Workspace

    # Resolved from the environment (MLOPS_WORKSPACE, MLOPS_TRACKING_URI) exactly as the kernels resolved it.
    print(summarize(Workspace(), executed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
