"""Pipeline benchmark: the runner against bare papermill, in one run on this machine.

Run with ``.venv/bin/python bench/bench_pipelines.py``. Four figures, each next to its reference and target:

1. A linear chain of 5 trivial notebooks run by ``mlops.pipelines.run(..., force=True)`` against the same five
   notebooks run one after the other with ``papermill.execute_notebook``: no slower (each step still gets a fresh
   kernel; the runner starts the next step's kernel while the current one runs).
2. A fully reused re-run of the 3-step example pipeline (``notebooks/pipeline``): under 1 s, no kernel started.
3. The same re-run from the command line (``jupyter mlops pipeline run``, a new process each time), wall time
   next to the in-process figure: under 2 s, what a user waits for (interpreter start and imports included).
4. Two independent steps (sleeping 2.0 s and 1.5 s) against the longer step alone: within 1.3x.
5. ``jupyter mlops ci run`` on the example pipeline when nothing changed (every step reused, the gate judged again,
   the candidate awaiting approval), wall: under 3 s, next to the first CI run of a fresh workspace.

Everything lives in a temporary folder removed at the end. The exit status is 1 when a target is missed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "notebooks" / "pipeline"
CHAIN_STEPS = 5
REPEATS = 3
LONG_S, SHORT_S = 2.0, 1.5
RATIO_TARGET = 1.3
REUSE_TARGET_S = 1.0
CLI_REUSE_TARGET_S = 2.0
CI_REUSE_TARGET_S = 3.0


@dataclass
class Row:
    figure: str
    ours: str
    reference: str
    target: str
    ok: bool


def _notebook(path: Path, code: str) -> Path:
    cells = [
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "src = None\nout = 'out.txt'"},
        {"cell_type": "code", "metadata": {}, "source": code},
    ]
    for index, cell in enumerate(cells):
        cell.update(id=f"c{index}", execution_count=None, outputs=[])
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    document = {"cells": cells, "metadata": {"kernelspec": kernelspec}, "nbformat": 4, "nbformat_minor": 5}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def _chain(folder: Path) -> Path:
    _notebook(folder / "step.ipynb", "open(out, 'w').write('x')")
    lines = ["name: bench-chain", "steps:"]
    for i in range(CHAIN_STEPS):
        inputs = f", inputs: {{src: s{i - 1}.out}}" if i else ""
        lines.append(f"  s{i}: {{notebook: step.ipynb{inputs}, outputs: {{out: out/s{i}.txt}}}}")
    (folder / "pipeline.yaml").write_text("\n".join(lines) + "\n")
    return folder / "pipeline.yaml"


def bench_chain(scratch: Path, ws) -> Row:
    import papermill

    from jupyter_mlops import pipelines

    spec = _chain(scratch / "chain")
    notebook = spec.parent / "step.ipynb"

    def bare() -> float:
        started = time.perf_counter()
        for i in range(CHAIN_STEPS):
            papermill.execute_notebook(
                str(notebook),
                str(scratch / f"bare-{i}.ipynb"),
                parameters={"out": str(scratch / f"bare-{i}.txt")},
                progress_bar=False,
                cwd=str(spec.parent),
            )
        return time.perf_counter() - started

    def ours() -> float:
        started = time.perf_counter()
        result = pipelines.run(spec, force=True, workspace=ws)
        assert result.status == "FINISHED", result.summary()
        return time.perf_counter() - started

    ours(), bare()  # warm caches (imports, the store) for both
    ours_s = statistics.median(ours() for _ in range(REPEATS))
    bare_s = statistics.median(bare() for _ in range(REPEATS))
    return Row(
        f"{CHAIN_STEPS}-step chain of trivial notebooks (median of {REPEATS})",
        f"{ours_s:.2f} s",
        f"{bare_s:.2f} s bare papermill chain",
        "no slower",
        ours_s <= bare_s,
    )


def bench_reuse(scratch: Path, ws) -> list[Row]:
    """The fully reused re-run in this process, then from the command line."""
    from jupyter_mlops import pipelines
    from jupyter_mlops.pipelines import kernels

    folder = scratch / "example"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("data", "model", "metrics.json", "conftest.py"))
    first = pipelines.run(folder / "pipeline.yaml", workspace=ws)
    assert first.status == "FINISHED", first.summary()
    times, started_kernels = [], kernels.kernels_started()
    for _ in range(REPEATS):
        started = time.perf_counter()
        again = pipelines.run(folder / "pipeline.yaml", workspace=ws)
        times.append(time.perf_counter() - started)
        assert {s.status for s in again.steps.values()} == {"reused"}, again.summary()
    added = kernels.kernels_started() - started_kernels
    wall = statistics.median(times)
    in_process = Row(
        f"fully reused re-run of the 3-step example (median of {REPEATS})",
        f"{wall:.2f} s, {added} kernels",
        f"first run {sum(s.duration_s or 0 for s in first.steps.values()):.2f} s of steps",
        f"< {REUSE_TARGET_S:.0f} s, 0 kernels",
        wall < REUSE_TARGET_S and added == 0,
    )
    return [in_process, _bench_cli_reuse(folder / "pipeline.yaml", ws, wall)]


def _cli() -> list[str]:
    """The command a user types, ``jupyter mlops`` (through jupyter's launcher), when this venv has it."""
    jupyter = Path(sys.executable).parent / "jupyter"
    return [str(jupyter), "mlops"] if jupyter.exists() else [sys.executable, "-m", "jupyter_mlops.cli"]


def _bench_cli_reuse(spec: Path, ws, in_process_s: float) -> Row:
    command = [*_cli(), "pipeline", "run", str(spec), "--workspace", str(ws.root), "--json"]

    def once() -> float:
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        assert done.returncode == 0, done.stderr
        assert {s["status"] for s in json.loads(done.stdout)["steps"].values()} == {"reused"}, done.stdout
        return wall

    wall = statistics.median(once() for _ in range(REPEATS))
    return Row(
        f"the same re-run from the CLI, wall (median of {REPEATS})",
        f"{wall:.2f} s",
        f"{in_process_s:.2f} s in process",
        f"< {CLI_REUSE_TARGET_S:.0f} s",
        wall < CLI_REUSE_TARGET_S,
    )


def bench_ci(scratch: Path) -> Row:
    """`ci run` in a new workspace (every step executes, approval requested), then with nothing changed."""
    folder = scratch / "ci"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("data", "model", "metrics.json", "conftest.py"))
    command = [*_cli(), "ci", "run", str(folder / "pipeline.yaml"), "--workspace", str(scratch / "ci-ws"), "--json"]

    def once(expected: str) -> float:
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["outcome"] == expected, done.stdout
        return wall

    fresh = once("approval_requested")
    wall = statistics.median(once("awaiting_approval") for _ in range(REPEATS))
    return Row(
        f"`ci run` with nothing changed, wall (median of {REPEATS})",
        f"{wall:.2f} s",
        f"first CI run {fresh:.2f} s",
        f"< {CI_REUSE_TARGET_S:.0f} s",
        wall < CI_REUSE_TARGET_S,
    )


def bench_parallel(scratch: Path, ws) -> Row:
    from jupyter_mlops import pipelines

    folder = scratch / "parallel"
    _notebook(folder / "long.ipynb", f"import time\ntime.sleep({LONG_S})\nopen(out, 'w').write('x')")
    _notebook(folder / "short.ipynb", f"import time\ntime.sleep({SHORT_S})\nopen(out, 'w').write('x')")
    both = folder / "pipeline.yaml"
    both.write_text(
        "name: bench-parallel\nsteps:\n"
        "  long: {notebook: long.ipynb, outputs: {out: out/long.txt}}\n"
        "  short: {notebook: short.ipynb, outputs: {out: out/short.txt}}\n"
    )
    alone = folder / "alone.yaml"
    alone.write_text("name: bench-alone\nsteps:\n  long: {notebook: long.ipynb, outputs: {out: out/alone.txt}}\n")

    def timed(spec: Path) -> float:
        started = time.perf_counter()
        result = pipelines.run(spec, force=True, max_parallel=2, workspace=ws)
        assert result.status == "FINISHED", result.summary()
        return time.perf_counter() - started

    timed(alone)
    alone_s = statistics.median(timed(alone) for _ in range(REPEATS))
    both_s = statistics.median(timed(both) for _ in range(REPEATS))
    ratio = both_s / alone_s
    return Row(
        f"two independent steps ({LONG_S:g} s + {SHORT_S:g} s sleeps, median of {REPEATS})",
        f"{both_s:.2f} s ({ratio:.2f}x)",
        f"{alone_s:.2f} s the longer step alone",
        f"<= {RATIO_TARGET}x",
        ratio <= RATIO_TARGET,
    )


def print_table(rows: list[Row]) -> None:
    headers = ("figure", "jupyter-mlops", "reference", "target", "")
    table = [(r.figure, r.ours, r.reference, r.target, "ok" if r.ok else "MISSED") for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for t in table:
        print("  ".join(v.ljust(w) for v, w in zip(t, widths, strict=True)).rstrip())


def main() -> int:
    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="mlops-bench-pipelines-"))
    try:
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
        import mlflow  # noqa: F401  (configures its loggers on import: quiet them after)

        from jupyter_mlops import Workspace

        logging.getLogger("mlflow").setLevel(logging.ERROR)
        logging.getLogger("papermill").setLevel(logging.ERROR)

        ws = Workspace(scratch / "ws")
        print(f"jupyter-mlops pipeline benchmark  (python {sys.version.split()[0]}, {os.cpu_count()} cores)")
        rows = [bench_chain(scratch, ws), *bench_reuse(scratch, ws), bench_parallel(scratch, ws), bench_ci(scratch)]
        print_table(rows)
        print(f"\nfinished in {time.perf_counter() - started:.1f} s")
        return 0 if all(r.ok for r in rows) else 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
