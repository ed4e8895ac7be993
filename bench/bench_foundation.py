"""Foundation benchmark: jupyter-mlops against plain MLflow on the same local SQLite store.

Run with ``.venv/bin/python bench/bench_foundation.py`` (or ``make bench``). Four figures, each printed next to the
reference it is compared with and its target:

1. ``import jupyter_mlops`` + ``%load_ext jupyter_mlops`` in a fresh process (IPython already imported and a shell
   built) against ``import mlflow`` in a fresh process; MLflow must stay unimported.
2. ``ws.models.register(folder, name)`` against the same work done with ``MlflowClient`` directly.
3. ``ws.models.list("stage=prod")`` over 1,000 versions against ``client.search_model_versions``.
4. ``%%mlops_job`` on an empty cell against MLflow's own ``start_run()`` + ``end_run()`` (overhead in ms).

Everything lives in temporary folders that are removed at the end; nothing is written next to the repository.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IMPORT_RUNS = 7
MLFLOW_IMPORT_RUNS = 3
REGISTER_WARMUP = 3
REGISTER_RUNS = 50
REGISTER_BLOCK = 5
LIST_MODELS = 10
LIST_VERSIONS_PER_MODEL = 100
LIST_RUNS = 20
JOB_RUNS = 20

IMPORT_TARGET_MS = 150.0
RATIO_TARGET = 1.3
JOB_OVERHEAD_TARGET_MS = 150.0
MODEL_NAME = "bench-model"

_OURS_IMPORT_CHILD = """
import json, sys, time
import IPython
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
t0 = time.perf_counter()
import jupyter_mlops
shell.run_line_magic("load_ext", "jupyter_mlops")
ms = (time.perf_counter() - t0) * 1000
print(json.dumps({
    "ms": ms,
    "mlflow_loaded": "mlflow" in sys.modules,
    "magic_registered": "mlops_job" in shell.magics_manager.magics["cell"],
}))
"""

_MLFLOW_IMPORT_CHILD = """
import json, time
t0 = time.perf_counter()
import mlflow
print(json.dumps({"ms": (time.perf_counter() - t0) * 1000}))
"""


@dataclass
class Row:
    """One line of the final table."""

    figure: str
    ours: str
    reference: str
    comparison: str
    target: str
    ok: bool


def _quiet_environment(scratch: Path) -> None:
    """No progress bars, no MLflow/alembic chatter, no developer settings, no writes to ~/.ipython."""
    for var in ("MLOPS_WORKSPACE", "MLOPS_TRACKING_URI", "MLOPS_METADATA_URI", "MLFLOW_TRACKING_URI"):
        os.environ.pop(var, None)
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    os.environ["MLFLOW_LOGGING_LEVEL"] = "ERROR"
    os.environ["IPYTHONDIR"] = str(scratch / "ipython")
    warnings.filterwarnings("ignore")
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _timed(call: Callable[[], Any]) -> float:
    """Milliseconds taken by one call."""
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


def _child(code: str) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter of this venv; return the JSON it prints last."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    if result.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({result.returncode}):\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _spread(samples_ms: list[float]) -> str:
    return f"min {min(samples_ms):.1f} / max {max(samples_ms):.1f} ms"


# -- 1. import + %load_ext ------------------------------------------------------------------------------------
def bench_import() -> Row:
    """``import jupyter_mlops`` + ``%load_ext`` in fresh processes versus ``import mlflow`` in fresh processes."""
    _child(_OURS_IMPORT_CHILD)  # warm the OS file cache for both, uncounted
    _child(_MLFLOW_IMPORT_CHILD)
    ours: list[float] = []
    reference: list[float] = []
    mlflow_loaded = magic_missing = False
    for i in range(IMPORT_RUNS):
        out = _child(_OURS_IMPORT_CHILD)
        ours.append(out["ms"])
        mlflow_loaded |= out["mlflow_loaded"]
        magic_missing |= not out["magic_registered"]
        if i < MLFLOW_IMPORT_RUNS:
            reference.append(_child(_MLFLOW_IMPORT_CHILD)["ms"])
    ours_ms, ref_ms = statistics.median(ours), statistics.median(reference)
    print(f"[1] import jupyter_mlops + %load_ext: median {ours_ms:.1f} ms ({_spread(ours)}), n={len(ours)}")
    print(f"    import mlflow:                     median {ref_ms:.1f} ms ({_spread(reference)}), n={len(reference)}")
    print(f"    assert 'mlflow' not in sys.modules after %load_ext: {'OK' if not mlflow_loaded else 'FAILED'}")
    print(f"    %%mlops_job registered: {'OK' if not magic_missing else 'FAILED'}")
    return Row(
        "1 import + %load_ext",
        f"{ours_ms:.1f} ms",
        f"{ref_ms:.1f} ms (import mlflow)",
        f"{ours_ms / ref_ms:.3f}x" + ("" if not mlflow_loaded else "; mlflow LOADED"),
        f"< {IMPORT_TARGET_MS:.0f} ms, no mlflow",
        ours_ms < IMPORT_TARGET_MS and not mlflow_loaded and not magic_missing,
    )


# -- 2. register a folder -------------------------------------------------------------------------------------
def _model_folder(root: Path) -> Path:
    """Three files of 10 KB, as a small model folder would hold."""
    folder = root / "model-src"
    folder.mkdir()
    for i in range(3):
        (folder / f"part-{i}.bin").write_bytes(os.urandom(10 * 1024))
    return folder


def bench_register(scratch: Path) -> Row:
    """``ws.models.register(folder)`` versus create_run + log_artifacts + set_terminated + create_model_version."""
    from mlflow import MlflowClient

    import jupyter_mlops
    from jupyter_mlops.registry import CREATED_BY_TAG, FLAVOR_TAG, REGISTRATION_EXPERIMENT, current_user

    folder = _model_folder(scratch)
    ws = jupyter_mlops.Workspace(scratch / "ws-register")
    direct_dir = scratch / "direct-register"
    direct_dir.mkdir()
    client = MlflowClient(tracking_uri=f"sqlite:///{direct_dir}/mlflow.db")
    experiment_id = client.create_experiment(
        REGISTRATION_EXPERIMENT, artifact_location=(direct_dir / "artifacts" / REGISTRATION_EXPERIMENT).as_uri()
    )
    client.create_registered_model(MODEL_NAME)
    user_tags = {"team": "bench"}
    user = current_user()

    def ours() -> None:
        ws.models.register(str(folder), MODEL_NAME, tags=user_tags)

    def direct() -> None:
        run = client.create_run(experiment_id, run_name=f"register-{MODEL_NAME}", tags={"mlflow.user": user})
        run_id = run.info.run_id
        client.log_artifacts(run_id, str(folder), "model")
        client.set_terminated(run_id, "FINISHED")
        client.create_model_version(
            MODEL_NAME,
            source=f"{run.info.artifact_uri}/model",
            run_id=run_id,
            tags={**user_tags, CREATED_BY_TAG: user, FLAVOR_TAG: "files"},
        )

    first_ms = _timed(ours)  # opens (creates) the workspace store and the registration experiment
    for _ in range(REGISTER_WARMUP):
        ours()
        direct()
    ours_s: list[float] = []
    direct_s: list[float] = []
    while len(ours_s) < REGISTER_RUNS:  # alternate blocks, so drift hits both sides alike
        ours_s += [_timed(ours) for _ in range(REGISTER_BLOCK)]
        direct_s += [_timed(direct) for _ in range(REGISTER_BLOCK)]

    expected = 1 + REGISTER_WARMUP + REGISTER_RUNS
    ours_count = len(ws.models.list(f"name={MODEL_NAME}"))
    direct_count = len(client.search_model_versions(f"name = '{MODEL_NAME}'"))
    same_work = ours_count == expected and direct_count == expected - 1
    ours_ms, direct_ms = statistics.median(ours_s), statistics.median(direct_s)
    ratio = ours_ms / direct_ms
    print(f"[2] register folder (3 x 10 KB): first call (creates the store) {first_ms:.0f} ms")
    print(f"    ws.models.register:     median {ours_ms:.1f} ms ({_spread(ours_s)}), n={len(ours_s)}")
    print(f"    MlflowClient directly:  median {direct_ms:.1f} ms ({_spread(direct_s)}), n={len(direct_s)}")
    print(f"    versions created: ours {ours_count}, direct {direct_count} ({'OK' if same_work else 'MISMATCH'})")
    return Row(
        "2 register folder",
        f"{ours_ms:.1f} ms",
        f"{direct_ms:.1f} ms (MlflowClient)",
        f"{ratio:.2f}x",
        f"<= {RATIO_TARGET}x",
        ratio <= RATIO_TARGET and same_work,
    )


# -- 3. list with a filter ------------------------------------------------------------------------------------
def bench_list(scratch: Path) -> Row:
    """``ws.models.list("stage=prod")`` versus ``client.search_model_versions`` over 1,000 versions."""
    from mlflow import MlflowClient

    import jupyter_mlops

    ws = jupyter_mlops.Workspace(scratch / "ws-list")
    _ = ws.client  # create the store (migrations) the way the workspace does
    client = MlflowClient(tracking_uri=ws.tracking_uri, registry_uri=ws.tracking_uri)
    teams = ("risk", "growth", "ops", "platform")
    start = time.perf_counter()
    for m in range(LIST_MODELS):
        name = f"model-{m:02d}"
        client.create_registered_model(name)
        for v in range(LIST_VERSIONS_PER_MODEL):
            tags = {"team": teams[v % len(teams)], "stage": "prod" if v % 10 == 0 else "dev"}
            client.create_model_version(name, source=f"file:///dummy/{name}/{v}", tags=tags)
    populate_s = time.perf_counter() - start
    total = LIST_MODELS * LIST_VERSIONS_PER_MODEL

    mlflow_filter = "tags.`stage` = 'prod'"
    for _ in range(2):  # warm-up
        ws.models.list("stage=prod")
        client.search_model_versions(mlflow_filter)
    ours_s: list[float] = []
    ref_s: list[float] = []
    for _ in range(LIST_RUNS):
        ours_s.append(_timed(lambda: ws.models.list("stage=prod")))
        ref_s.append(_timed(lambda: client.search_model_versions(mlflow_filter)))
    ours_n = len(ws.models.list("stage=prod"))
    ref_n = len(client.search_model_versions(mlflow_filter))
    ours_ms, ref_ms = statistics.median(ours_s), statistics.median(ref_s)
    ratio = ours_ms / ref_ms
    print(f"[3] models list 'stage=prod' over {total} versions (populated in {populate_s:.1f} s)")
    print(f"    ws.models.list:                median {ours_ms:.1f} ms ({_spread(ours_s)})")
    print(f"    client.search_model_versions:  median {ref_ms:.1f} ms ({_spread(ref_s)})")
    print(f"    matches: ours {ours_n}, reference {ref_n} ({'OK' if ours_n == ref_n else 'MISMATCH'})")
    return Row(
        f"3 models list filter ({total} v.)",
        f"{ours_ms:.1f} ms",
        f"{ref_ms:.1f} ms (search_model_versions)",
        f"{ratio:.2f}x",
        f"<= {RATIO_TARGET}x",
        ratio <= RATIO_TARGET and ours_n == ref_n,
    )


# -- 4. %%mlops_job overhead ----------------------------------------------------------------------------------
def bench_job(scratch: Path) -> list[Row]:
    """``%%mlops_job`` on an empty cell versus ``mlflow.start_run(); mlflow.end_run()`` on the same store."""
    from IPython.core.interactiveshell import InteractiveShell

    import jupyter_mlops

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "jupyter_mlops")
    ws = jupyter_mlops.use_workspace(scratch / "ws-job")
    experiment_id = ws.experiment_id()  # the store and the "notebooks" experiment exist before any clock

    import mlflow

    def cell(code: str) -> Callable[[], None]:
        def run() -> None:
            result = shell.run_cell(code)
            if not result.success:
                raise RuntimeError(f"cell failed: {code!r}: {result.error_in_exec or result.error_before_exec}")

        return run

    def mlflow_run() -> None:
        mlflow.start_run()
        mlflow.end_run()

    empty_cell = cell("pass\n")
    job_no_autolog = cell("%%mlops_job --no-autolog\npass\n")
    job_autolog = cell("%%mlops_job\npass\n")

    warmup_ms = _timed(job_autolog)  # first job: enables MLflow autologging for the process
    mlflow.set_tracking_uri(ws.tracking_uri)
    mlflow.set_experiment(experiment_id=experiment_id)
    for call in (mlflow_run, job_no_autolog, job_autolog, empty_cell):
        call()
    samples: dict[str, list[float]] = {"no_autolog": [], "autolog": [], "mlflow": [], "empty": []}
    for _ in range(JOB_RUNS):  # interleaved, so drift (store growth, caches) hits every side alike
        samples["mlflow"].append(_timed(mlflow_run))
        samples["no_autolog"].append(_timed(job_no_autolog))
        samples["autolog"].append(_timed(job_autolog))
        samples["empty"].append(_timed(empty_cell))
    shell.atexit_operations()  # close IPython's history database before the scratch folder goes
    atexit.unregister(shell.atexit_operations)
    med = {k: statistics.median(v) for k, v in samples.items()}
    print(f"[4] %%mlops_job on an empty cell (workspace {ws.root})")
    print(f"    warm-up %%mlops_job (autolog set-up; store already open): {warmup_ms:.0f} ms")
    print("    note: autologging stays on for the process once a job enabled it, so --no-autolog runs with it on")
    labels = {
        "no_autolog": "%%mlops_job --no-autolog",
        "autolog": "%%mlops_job",
        "mlflow": "mlflow start_run+end_run",
        "empty": "plain run_cell('pass')",
    }
    for key, label in labels.items():
        print(f"    {label + ':':27} median {med[key]:6.1f} ms ({_spread(samples[key])})")
    rows = []
    for key, label in (("no_autolog", "4 %%mlops_job --no-autolog"), ("autolog", "4 %%mlops_job")):
        overhead = med[key] - med["mlflow"]
        rows.append(
            Row(
                label,
                f"{med[key]:.1f} ms",
                f"{med['mlflow']:.1f} ms (start_run+end_run)",
                f"+{overhead:.1f} ms",
                f"< +{JOB_OVERHEAD_TARGET_MS:.0f} ms",
                overhead < JOB_OVERHEAD_TARGET_MS,
            )
        )
    rows.append(Row("4 first %%mlops_job (warm-up)", f"{warmup_ms:.0f} ms", "-", "-", "(info)", True))
    return rows


# -- table ----------------------------------------------------------------------------------------------------
def print_table(rows: list[Row]) -> None:
    """The final side-by-side table."""
    header = ("figure", "ours", "reference", "ratio/overhead", "target", "OK?")
    cells = [header] + [(r.figure, r.ours, r.reference, r.comparison, r.target, "yes" if r.ok else "NO") for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    line = "-+-".join("-" * w for w in widths)
    print()
    for i, c in enumerate(cells):
        print(" | ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)))
        if i == 0:
            print(line)


def main() -> int:
    """Run the four figures and print the table; the exit status is 1 when a target is missed."""
    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="mlops-bench-"))
    try:
        _quiet_environment(scratch)
        import mlflow

        print(f"jupyter-mlops foundation benchmark  (python {sys.version.split()[0]}, mlflow {mlflow.__version__})")
        logging.getLogger("mlflow").setLevel(logging.ERROR)
        rows = [bench_import(), bench_register(scratch), bench_list(scratch), *bench_job(scratch)]
        print_table(rows)
        print(f"\nfinished in {time.perf_counter() - started:.1f} s")
        return 0 if all(r.ok for r in rows) else 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
