"""Notebook pipelines with real papermill runs, real kernels and the real local MLflow store."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from jupyter_mlops import InvalidInput, NotFound, Workspace, cli, pipelines
from jupyter_mlops.pipelines import execution, history, kernels
from tests.waiting import eventually

EXAMPLE = Path(__file__).resolve().parent.parent / "notebooks" / "pipeline"


def _notebook(path: Path, parameters: str | None, code: str) -> Path:
    """A small notebook: an optional cell tagged ``parameters``, then ``code``."""
    cells = []
    if parameters is not None:
        cells.append({"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": parameters})
    cells.append({"cell_type": "code", "metadata": {}, "source": code})
    for index, cell in enumerate(cells):
        cell.update(id=f"c{index}", execution_count=None, outputs=[])
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    document = {"cells": cells, "metadata": {"kernelspec": kernelspec}, "nbformat": 4, "nbformat_minor": 5}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


WRITE = "from pathlib import Path\nPath(out).write_text(str(value) + Path(src).read_text() if src else str(value))"


def _chain(folder: Path, *, fail_b: bool = False, name: str = "chain") -> Path:
    """a -> b -> c, and d on its own; every step writes ``out`` from ``value`` and its input ``src``."""
    for step in "abcd":
        code = "raise RuntimeError('b is broken')" if step == "b" and fail_b else WRITE
        _notebook(folder / f"{step}.ipynb", "value = 0\nsrc = None\nout = 'out.txt'", code)
    spec = folder / "pipeline.yaml"
    spec.write_text(
        f"name: {name}\n"
        "parameters: {value: 1}\n"
        "steps:\n"
        "  a: {notebook: a.ipynb, parameters: {value: '${value}'}, outputs: {out: out/a.txt}}\n"
        "  b: {notebook: b.ipynb, inputs: {src: a.out}, outputs: {out: out/b.txt}}\n"
        "  c: {notebook: c.ipynb, inputs: {src: b.out}, outputs: {out: out/c.txt}}\n"
        "  d: {notebook: d.ipynb, parameters: {value: 4}, outputs: {out: out/d.txt}}\n"
    )
    return spec


def _states(result) -> dict[str, str]:
    return {name: step.status for name, step in result.steps.items()}


def _artifacts(ws: Workspace, run_id: str, path: str = "") -> set[str]:
    found = set()
    for item in ws.client.list_artifacts(run_id, path or None):
        found |= _artifacts(ws, run_id, item.path) if item.is_dir else {item.path}
    return found


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.ipynb"))}


# -- runs, reuse, parameters ------------------------------------------------------------------------------------
def test_example_runs_records_steps_then_reuses_everything_then_reruns_only_what_a_parameter_changes(
    local_workspace: Workspace, tmp_path
):
    # Given a copy of the example pipeline (prep -> train -> evaluate)
    folder = tmp_path / "example"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("data", "model", "metrics.json"))
    before = _digests(folder)
    spec = folder / "pipeline.yaml"

    # When it runs for the first time
    first = pipelines.run(spec, workspace=local_workspace)
    # Then every step executed, as a child run of the pipeline's run holding the executed notebook and hashes
    assert first.status == "FINISHED"
    assert _states(first) == {"prep": "succeeded", "train": "succeeded", "evaluate": "succeeded"}
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["accuracy"] > 0.9
    parent = local_workspace.client.get_run(first.run_id)
    assert local_workspace.client.get_experiment(parent.info.experiment_id).name == "breast-cancer"
    assert parent.data.params == {"test_size": "0.25", "C": "1.0"}
    train = local_workspace.client.get_run(first.steps["train"].run_id)
    assert train.data.tags["mlflow.parentRunId"] == first.run_id
    assert train.info.status == "FINISHED" and train.data.params == {"C": "1.0"}
    assert len(train.data.tags["mlops.input.train"]) == 64 and len(train.data.tags["mlops.output.model"]) == 64
    assert len(train.data.tags["mlops.env_hash"]) == 64
    files = _artifacts(local_workspace, first.steps["train"].run_id)
    assert {"notebook/train.ipynb", "outputs/model/model.pkl", "logs/stdout.txt"} <= files
    executed = json.loads(
        Path(local_workspace.client.download_artifacts(train.info.run_id, "notebook/train.ipynb")).read_text()
    )
    assert "duration" in executed["cells"][-1]["metadata"]["papermill"]  # papermill's per-cell timings
    stdout = Path(local_workspace.client.download_artifacts(train.info.run_id, "logs/stdout.txt")).read_text()
    assert "training accuracy" in stdout
    assert first.steps["train"].outputs == {"model": str(folder / "model")}
    # and the trained model is registered, linked to the step's run
    [version] = local_workspace.models.list("name=breast-cancer-pipeline")
    assert version.run_id == train.info.run_id and version.tags["stage"] == "candidate"
    assert version.tags["pipeline_run"] == first.run_id and version.tags["pipeline_step"] == "train"

    # When it runs again with nothing changed (and an output deleted meanwhile)
    (folder / "metrics.json").unlink()
    started = kernels.kernels_started()
    second = pipelines.run(spec, workspace=local_workspace)
    # Then nothing executes: no kernel starts, outputs come back from the runs that made them
    assert _states(second) == {"prep": "reused", "train": "reused", "evaluate": "reused"}
    assert kernels.kernels_started() == started
    assert json.loads((folder / "metrics.json").read_text()) == metrics
    reused = local_workspace.client.get_run(second.steps["evaluate"].run_id)
    assert reused.data.tags["mlops.step.reused_from"] == first.steps["evaluate"].run_id

    # When a parameter that only train uses changes
    third = pipelines.run(spec, parameters={"C": 0.05}, workspace=local_workspace)
    # Then prep is reused and only train and what depends on it execute
    assert _states(third) == {"prep": "reused", "train": "succeeded", "evaluate": "succeeded"}
    # and the source notebooks were never modified
    assert _digests(folder) == before


def test_only_and_from_run_part_of_the_pipeline_with_inputs_from_the_cache(local_workspace: Workspace, tmp_path):
    spec = _chain(tmp_path / "p")
    assert pipelines.run(spec, workspace=local_workspace).status == "FINISHED"
    # --only b: b executes, a comes from the cache, the rest is not part of the run
    only = pipelines.run(spec, only="b", workspace=local_workspace)
    assert _states(only) == {"a": "reused", "b": "succeeded", "c": "skipped", "d": "skipped"}
    # --from b: b and everything downstream execute
    downstream = pipelines.run(spec, from_step="b", workspace=local_workspace)
    assert _states(downstream) == {"a": "reused", "b": "succeeded", "c": "succeeded", "d": "skipped"}
    assert (tmp_path / "p" / "out" / "c.txt").read_text() == "001"
    with pytest.raises(InvalidInput, match="no such step; its steps: a, b, c, d"):
        pipelines.run(spec, only="nope", workspace=local_workspace)

    # list, show, runs and clone see the pipeline and its versions
    [info] = [p for p in pipelines.list_pipelines(workspace=local_workspace) if p.name == "chain"]
    assert info.runs == 3 and info.last_status == "FINISHED"
    shown = pipelines.show("chain", workspace=local_workspace)
    assert shown.spec == spec.read_text() and len(shown.version) == 12
    history = pipelines.runs("chain", workspace=local_workspace)
    assert history[0].run_id == downstream.run_id and history[0].steps["b"] == "succeeded"
    cloned = pipelines.clone("chain", "chain-copy", tmp_path / "copy", workspace=local_workspace)
    assert sorted(p.name for p in cloned.parent.iterdir()) == [*(f"{s}.ipynb" for s in "abcd"), "pipeline.yaml"]
    assert pipelines.validate(cloned).name == "chain-copy"
    assert "name: chain\n" in spec.read_text()  # the original is left as it was


# -- failures, resume, kill -------------------------------------------------------------------------------------
def test_a_failing_step_skips_its_dependants_lets_other_branches_finish_and_resume_runs_the_rest(
    local_workspace: Workspace, tmp_path
):
    # Given a pipeline whose step b raises
    folder = tmp_path / "p"
    spec = _chain(folder, fail_b=True)
    # When it runs
    failed = pipelines.run(spec, workspace=local_workspace)
    # Then the run failed, c (after b) was skipped, d (independent) succeeded
    assert failed.status == "FAILED"
    assert _states(failed) == {"a": "succeeded", "b": "failed", "c": "skipped", "d": "succeeded"}
    assert failed.steps["c"].run_id is None
    assert local_workspace.client.get_run(failed.run_id).info.status == "FAILED"
    b_run = local_workspace.client.get_run(failed.steps["b"].run_id)
    assert b_run.info.status == "FAILED" and "b is broken" in b_run.data.tags["mlops.error"]
    executed = Path(local_workspace.client.download_artifacts(b_run.info.run_id, "notebook/b.ipynb")).read_text()
    assert "RuntimeError" in executed  # the executed notebook keeps the error cell

    # When b is fixed and the run resumed
    _notebook(folder / "b.ipynb", "value = 0\nsrc = None\nout = 'out.txt'", WRITE)
    resumed = pipelines.resume(failed.run_id, workspace=local_workspace)
    # Then what succeeded is reused and only the failed and skipped steps run
    assert resumed.status == "FINISHED"
    assert _states(resumed) == {"a": "reused", "b": "succeeded", "c": "succeeded", "d": "reused"}
    assert local_workspace.client.get_run(resumed.run_id).data.tags["mlops.pipeline.resumed_from"] == failed.run_id


def test_retries_run_a_failed_step_again_on_a_fresh_kernel_and_a_timeout_stops_a_stuck_one(
    local_workspace: Workspace, tmp_path
):
    # Given a step that fails on its first attempt only, and a step that would never finish
    flaky = "from pathlib import Path\nmarker = Path(out + '.tried')\nfirst = not marker.exists()\nmarker.touch()\n"
    _notebook(tmp_path / "flaky.ipynb", "out = ''", flaky + "assert not first, 'first attempt'\nPath(out).touch()")
    _notebook(tmp_path / "stuck.ipynb", None, "import time\ntime.sleep(60)")
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(
        "name: flaky\nsteps:\n"
        "  flaky: {notebook: flaky.ipynb, outputs: {out: out/flaky.txt}, retries: 1}\n"
        "  stuck: {notebook: stuck.ipynb, timeout: 2}\n"
    )
    started = time.monotonic()
    result = pipelines.run(spec, workspace=local_workspace)
    # Then the flaky step succeeded on its retry, keeping the failed attempt's notebook, and the stuck one timed out
    assert _states(result) == {"flaky": "succeeded", "stuck": "failed"}
    assert time.monotonic() - started < 30
    files = _artifacts(local_workspace, result.steps["flaky"].run_id)
    assert {"attempts/1/flaky.ipynb", "notebook/flaky.ipynb"} <= files
    stuck = local_workspace.client.get_run(result.steps["stuck"].run_id)
    assert stuck.data.tags["mlops.error"].startswith("timed out after 2 s")


def test_a_step_with_an_environment_runs_on_that_environments_kernel(local_workspace: Workspace, tmp_path):
    from jupyter_mlops.environments.service import Environments

    # Given a step whose environment (a venv with `six`) is built on first use
    (tmp_path / "env.yaml").write_text('name: pipeline-six\npython: "3.11"\npip: [six]\n')
    _notebook(tmp_path / "where.ipynb", "out = ''", "import six, sys\nopen(out, 'w').write(sys.prefix)")
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(
        "name: env\nsteps:\n  where: {notebook: where.ipynb, environment: env.yaml, outputs: {out: o.txt}}\n"
    )
    try:
        # When the pipeline runs
        result = pipelines.run(spec, workspace=local_workspace)
        # Then the step ran in the environment's venv, and the environment's hash is the step's env hash
        assert result.status == "FINISHED", result.summary()
        assert "pipeline-six" in (tmp_path / "o.txt").read_text()
        step = local_workspace.client.get_run(result.steps["where"].run_id)
        assert (
            step.data.tags["mlops.env_hash"]
            != local_workspace.client.get_run(result.run_id).data.tags["mlops.env_hash"]
        )
    finally:  # the kernelspec lives in the shared venv: never leave it behind
        with contextlib.suppress(NotFound):
            Environments(local_workspace).remove("pipeline-six")


def _wait_for_running_step(ws: Workspace, name: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        experiment = ws.client.get_experiment_by_name(name)
        if experiment is not None:
            steps = ws.client.search_runs(
                [experiment.experiment_id], "tags.`mlops.step.name` = 'slow' AND attributes.status = 'RUNNING'"
            )
            if steps:
                return steps[0].data.tags["mlflow.parentRunId"]
        time.sleep(0.2)
    raise AssertionError("the slow step never started")


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_a_stopped_runner_leaves_its_run_killed_never_running(local_workspace: Workspace, tmp_path, how):
    # Given a CLI run busy in a slow step
    _notebook(tmp_path / "slow.ipynb", None, "import time\ntime.sleep(30)")
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(f"name: slow-{how.lower()}\nsteps:\n  slow: {{notebook: slow.ipynb}}\n")
    command = [sys.executable, "-m", "jupyter_mlops.cli", "pipeline", "run", str(spec)]
    local_workspace.experiment_id("warm-up")  # the store exists before two processes open it
    process = subprocess.Popen(
        [*command, "--workspace", str(local_workspace.root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        run_id = _wait_for_running_step(local_workspace, f"slow-{how.lower()}")
        # When the runner is stopped
        process.send_signal(getattr(signal, how))
        process.wait(timeout=30)
    finally:
        process.kill()
    # Then the run and its step end KILLED: at once for SIGTERM, at the next pipeline command of any kind for SIGKILL
    if how == "SIGTERM":
        assert process.returncode != 0
    assert cli.main(["pipeline", "show", f"slow-{how.lower()}", "--workspace", str(local_workspace.root)]) == 0
    assert local_workspace.client.get_run(run_id).info.status == "KILLED"
    runs = pipelines.runs(f"slow-{how.lower()}", workspace=local_workspace)
    assert [(r.run_id, r.status) for r in runs] == [(run_id, "KILLED")]
    [step] = local_workspace.client.search_runs(
        [local_workspace.client.get_run(run_id).info.experiment_id], f"tags.`mlflow.parentRunId` = '{run_id}'"
    )
    assert step.info.status == "KILLED"


def test_a_runner_killed_outright_is_marked_killed_by_reconcile_all_with_each_steps_state(
    local_workspace: Workspace, tmp_path, monkeypatch, capsys
):
    # Given a CLI run of fast -> slow -> last, busy in slow (fast has succeeded, last waits)
    _notebook(tmp_path / "fast.ipynb", "out = ''", "open(out, 'w').write('x')")
    _notebook(tmp_path / "slow.ipynb", "src = None\nout = ''", "import time\ntime.sleep(60)")
    _notebook(tmp_path / "last.ipynb", "src = None", "print(src)")
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(
        "name: killed-outright\nsteps:\n"
        "  fast: {notebook: fast.ipynb, outputs: {out: out/fast.txt}}\n"
        "  slow: {notebook: slow.ipynb, inputs: {src: fast.out}, outputs: {out: out/slow.txt}}\n"
        "  last: {notebook: last.ipynb, inputs: {src: slow.out}}\n"
    )
    local_workspace.experiment_id("warm-up")  # the store exists before two processes open it
    command = [sys.executable, "-m", "jupyter_mlops.cli", "pipeline", "run", str(spec)]
    process = subprocess.Popen(
        [*command, "--workspace", str(local_workspace.root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        run_id = _wait_for_running_step(local_workspace, "killed-outright")
        # When the runner is killed with SIGKILL (it cannot mark anything)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
    client = local_workspace.client
    [slow] = client.search_runs(
        [client.get_run(run_id).info.experiment_id],
        f"tags.`mlflow.parentRunId` = '{run_id}' AND tags.`mlops.step.name` = 'slow'",
    )
    # and the server's periodic task calls reconcile_all (here: this test, until the run is marked)
    killed: list[str] = []

    def marked() -> bool:
        killed.extend(history.reconcile_all(local_workspace))
        return client.get_run(run_id).info.status != "RUNNING"

    assert eventually(marked, timeout=60, interval=0.1), "reconcile_all never marked the run of the dead runner"
    # Then the run and its running step are KILLED
    assert killed == [run_id]
    assert client.get_run(run_id).info.status == "KILLED"
    slow = client.get_run(slow.info.run_id)
    assert slow.info.status == "KILLED" and slow.data.tags["mlops.step.status"] == "killed"
    # and the run's record lists every step: what finished keeps its state, what ran or waited is killed
    workspace = ["--workspace", str(local_workspace.root)]
    assert cli.main(["pipeline", "runs", "killed-outright", *workspace, "--json"]) == 0
    [record] = json.loads(capsys.readouterr().out)
    assert record["status"] == "KILLED"
    assert record["steps"] == {"fast": "succeeded", "slow": "killed", "last": "killed"}
    assert cli.main(["pipeline", "show", "killed-outright", *workspace, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == ["fast", "slow", "last"]

    # and the kernel folders the killed runner could not remove go when another process starts its first kernel
    def left() -> list[Path]:
        return list(Path(tempfile.gettempdir()).glob(f"{kernels.RUNTIME_PREFIX}{process.pid}-*"))

    assert left(), "the killed runner's kernels left no folder: nothing to check"
    kernels._remove_orphans()
    assert left() == []

    # and with nothing RUNNING, reconciling the workspace costs two MLflow searches
    searches = _count_calls(monkeypatch, client, "search_experiments", "search_runs", "get_run")
    assert history.reconcile_all(local_workspace) == []
    assert searches == ["search_experiments", "search_runs"]


def _count_calls(monkeypatch: pytest.MonkeyPatch, obj: object, *names: str) -> list[str]:
    """The names of the methods called on ``obj``, in order (the calls still go through)."""
    calls: list[str] = []
    for name in names:
        real = getattr(obj, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(obj, name, counted)
    return calls


# -- the CLI ----------------------------------------------------------------------------------------------------
def test_cli_prints_the_run_record_as_json_and_exits_non_zero_when_a_step_fails(
    local_workspace: Workspace, tmp_path, capsys
):
    _notebook(tmp_path / "ok.ipynb", "n = 1\nout = ''", "open(out, 'w').write(str(n))")
    _notebook(tmp_path / "bad.ipynb", "n = 1", "assert n == 1, 'n must be 1'")
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(
        "name: cli-demo\nparameters: {n: 1}\nsteps:\n"
        "  ok: {notebook: ok.ipynb, parameters: {n: '${n}'}, outputs: {out: ok.txt}}\n"
        "  bad: {notebook: bad.ipynb, parameters: {n: '${n}'}}\n"
    )
    workspace = ["--workspace", str(local_workspace.root)]
    code = cli.main(["pipeline", "run", str(spec), *workspace, "--json"])
    out, err = capsys.readouterr()
    record = json.loads(out)
    assert code == 0 and record["status"] == "FINISHED"
    assert set(record) == {"run_id", "pipeline", "status", "steps"}
    assert set(record["steps"]["ok"]) == {"status", "run_id", "duration_s", "outputs"}
    assert record["steps"]["ok"]["outputs"] == {"out": str(tmp_path / "ok.txt")}
    assert "[pipeline] ok: running" in err and "[pipeline] ok: succeeded" in err

    # -p overrides a parameter (typed as YAML); bad fails, ok re-runs, the exit code says so
    code = cli.main(["pipeline", "run", str(spec), "-p", "n=2", "--max-parallel", "1", *workspace, "--json"])
    out, err = capsys.readouterr()
    record = json.loads(out)
    assert "[pipeline] bad: failed (AssertionError: n must be 1" in err
    assert code == 1 and record["status"] == "FAILED"
    assert {k: v["status"] for k, v in record["steps"].items()} == {"ok": "succeeded", "bad": "failed"}
    assert (tmp_path / "ok.txt").read_text() == "2"

    assert cli.main(["pipeline", "run", str(spec), "-p", "m=2", *workspace]) == 1
    assert "m is not a parameter of pipeline 'cli-demo'; its parameters: n" in capsys.readouterr().err

    # list, runs and show read the history back
    assert cli.main(["pipeline", "runs", "cli-demo", *workspace, "--json"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert [(r["status"], r["steps"]) for r in history] == [
        ("FAILED", {"ok": "succeeded", "bad": "failed"}),
        ("FINISHED", {"ok": "succeeded", "bad": "succeeded"}),
    ]
    assert cli.main(["pipeline", "list", *workspace]) == 0
    assert "cli-demo" in capsys.readouterr().out
    assert cli.main(["pipeline", "show", "cli-demo", *workspace]) == 0
    assert "bad: {notebook: bad.ipynb" in capsys.readouterr().out
    assert cli.main(["pipeline", "show", "nope", *workspace]) == 1
    assert "No pipeline named 'nope' has run in this workspace (pipelines: cli-demo)" in capsys.readouterr().err


# -- step kernels, and what a command imports -------------------------------------------------------------------
# a step that writes the connection file of the kernel it runs on (where it is, and what it says) to ``out``
CONNECTION = (
    "import json\nfrom pathlib import Path\nfrom ipykernel.connect import get_connection_file\n"
    "path = get_connection_file()\n"
    "Path(out).write_text(json.dumps({'path': path, **json.loads(Path(path).read_text())}))\n"
    "print('kernel', Path(path).parent.name)"
)
TCP_WARNING = "without encryption"  # ipykernel's warning for a kernel reached over TCP


def test_step_kernels_talk_over_ipc_in_a_private_folder_and_print_no_tcp_warning(local_workspace: Workspace, tmp_path):
    # Given a -> b, each step writing its kernel's connection file (b's kernel starts while a runs)
    for step in "ab":
        _notebook(tmp_path / f"{step}.ipynb", "src = None\nout = ''", CONNECTION)
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(
        "name: ipc\nsteps:\n"
        "  a: {notebook: a.ipynb, outputs: {out: out/a.json}}\n"
        "  b: {notebook: b.ipynb, inputs: {src: a.out}, outputs: {out: out/b.json}}\n"
    )
    # When it runs from the command line (every byte the process writes is captured)
    command = [sys.executable, "-m", "jupyter_mlops.cli", "pipeline", "run", str(spec), "--json"]
    done = subprocess.run(
        [*command, "--workspace", str(local_workspace.root)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    # Then nothing it printed, nor any notebook or log it kept, carries the TCP warning
    assert TCP_WARNING not in done.stdout + done.stderr
    record = json.loads(done.stdout)
    for step in "ab":
        run_id = record["steps"][step]["run_id"]
        (tmp_path / step).mkdir()
        kept = {
            artifact: Path(
                local_workspace.client.download_artifacts(run_id, artifact, str(tmp_path / step))
            ).read_text()
            for artifact in (f"notebook/{step}.ipynb", "logs/stdout.txt", "logs/stderr.txt")
        }
        assert not [artifact for artifact, text in kept.items() if TCP_WARNING in text]
        assert "kernel mlops-kernel-" in kept["logs/stdout.txt"]
        # and the kernel was reached over IPC: Unix sockets beside its connection file, in a folder of its own
        connection = json.loads((tmp_path / "out" / f"{step}.json").read_text())
        assert connection["transport"] == "ipc"
        folder = Path(connection["path"]).parent
        assert folder.name.startswith("mlops-kernel-") and connection["ip"].startswith(f"{folder}/")
        assert not folder.exists()  # removed with the kernel

    # and a kernel started on its own (as for a Dask task) is private to this user and quiet too
    kernel = kernels.Kernel("python3", tmp_path)
    try:
        assert (kernel.runtime.stat().st_mode & 0o777) == 0o700
        job = execution.Job(
            name="alone",
            notebook=str(tmp_path / "a.ipynb"),
            parameters={"out": str(tmp_path / "alone.json")},
            kernel_name="python3",
            outputs={"out": str(tmp_path / "alone.json")},
        )
        assert execution.execute(job, kernel).error is None
        assert TCP_WARNING not in kernel.output()
    finally:
        kernel.shutdown()
    assert json.loads((tmp_path / "alone.json").read_text())["transport"] == "ipc"
    assert not kernel.runtime.exists()


def test_a_fully_reused_run_and_the_history_commands_import_no_papermill(local_workspace: Workspace, tmp_path):
    # Given a pipeline that ran once
    spec = _chain(tmp_path / "p", name="reused")
    assert pipelines.run(spec, workspace=local_workspace).status == "FINISHED"
    # When a new process runs it again (nothing changed), then lists, shows and reads its runs
    workspace = ["--workspace", str(local_workspace.root)]
    driver = (
        "import json, sys\nfrom jupyter_mlops import cli\n"
        "codes = [cli.main(json.loads(argv)) for argv in sys.argv[1:]]\n"
        "heavy = ('papermill', 'nbclient', 'nbformat', 'jupyter_client', 'jsonschema', 'zmq')\n"
        "print(json.dumps({'codes': codes, 'imported': [m for m in heavy if m in sys.modules]}), file=sys.stderr)\n"
    )
    commands = [
        ["pipeline", "run", str(spec), *workspace],
        ["pipeline", "list", *workspace],
        ["pipeline", "show", "reused", *workspace],
        ["pipeline", "runs", "reused", *workspace],
    ]
    done = subprocess.run(
        [sys.executable, "-c", driver, *map(json.dumps, commands)], capture_output=True, text=True, timeout=300
    )
    # Then every step was reused, and neither papermill nor the notebook and kernel machinery was imported
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report == {"codes": [0, 0, 0, 0], "imported": []}, done.stderr
    latest = pipelines.runs("reused", max_results=1, workspace=local_workspace)[0]
    assert set(latest.steps.values()) == {"reused"}


# -- the spec ---------------------------------------------------------------------------------------------------
def _spec(tmp_path: Path, text: str) -> Path:
    _notebook(tmp_path / "nb.ipynb", "alpha = 1\nbeta: int = 2\ndata = None", "print(alpha)")
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(text)
    return spec


def test_a_parameter_the_notebook_does_not_declare_is_an_error_listing_the_declared_ones(tmp_path):
    spec = _spec(tmp_path, "name: p\nsteps:\n  one:\n    notebook: nb.ipynb\n    parameters: {alpha: 1, gamma: 3}\n")
    with pytest.raises(InvalidInput) as error:
        pipelines.validate(spec)
    assert str(error.value) == (
        f"{spec}:5: steps.one.parameters.gamma: nb.ipynb does not declare gamma in its `parameters` cell; "
        "it declares: alpha, beta, data"
    )
    # inputs and outputs reach the notebook as parameters too
    spec.write_text("name: p\nsteps:\n  one:\n    notebook: nb.ipynb\n    outputs: {result: r.txt}\n")
    with pytest.raises(InvalidInput, match=r"pipeline.yaml:5: steps.one.outputs.result: .* does not declare result"):
        pipelines.validate(spec)
    _notebook(tmp_path / "plain.ipynb", None, "print(1)")
    spec.write_text("name: p\nsteps:\n  one:\n    notebook: plain.ipynb\n    parameters: {alpha: 1}\n")
    with pytest.raises(InvalidInput, match=r"plain\.ipynb has no cell tagged `parameters`, but the step passes alpha"):
        pipelines.validate(spec)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "name: p\nsteps:\n  a:\n    notebook: nb.ipynb\n    outputs: {alpha: a.txt}\n"
            "  b:\n    notebook: nb.ipynb\n    inputs: {data: a.out}\n",
            "pipeline.yaml:8: steps.b.inputs.data: step 'a' has no output 'out'; its outputs: alpha",
        ),
        (
            "name: p\nsteps:\n  a:\n    notebook: nb.ipynb\n    inputs: {data: b.beta}\n    outputs: {alpha: a.txt}\n"
            "  b:\n    notebook: nb.ipynb\n    inputs: {data: a.alpha}\n    outputs: {beta: b.txt}\n",
            r"pipeline.yaml:\d+: steps.(a|b).inputs: the steps form a cycle: (a -> b -> a|b -> a -> b)",
        ),
        ("name: p\nsteps:\n  a:\n    notebook: missing.ipynb\n", r"pipeline.yaml:4: steps.a.notebook: the notebook .*"),
        ("name: p\nsteps:\n  a:\n    notebok: nb.ipynb\n", r"pipeline.yaml:4: steps.a.notebok: Extra inputs"),
        ("name: p\nsteps:\n  a:\n    notebook: nb.ipynb\n    retries: many\n", "pipeline.yaml:5: steps.a.retries"),
        ("name: p\nsteps:\n  a:\n    notebook: nb.ipynb\n    inputs: {data: nowhere.csv}\n", "neither STEP.OUTPUT"),
        ("name: p\nsteps:\n  a:\n    notebook: nb.ipynb\n    parameters: {alpha: '${x}'}\n", r"\$\{x\} is not a"),
        ("name: p\nsteps: {a: {notebook: nb.ipynb}\n", r"pipeline.yaml:\d+: \(yaml\): not valid YAML"),
    ],
    ids=["unknown-output", "cycle", "missing-notebook", "unknown-key", "bad-type", "bad-input", "bad-ref", "yaml"],
)
def test_spec_errors_name_the_file_the_line_and_the_key(tmp_path, text, expected):
    spec = _spec(tmp_path, text)
    with pytest.raises(InvalidInput, match=expected):
        pipelines.validate(spec)


def test_the_core_does_not_import_ipython():
    modules = "jupyter_mlops.pipelines.runner, jupyter_mlops.cli.pipelines, jupyter_mlops.pipelines.history"
    code = f"import sys, {modules}; print('IPython' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert out.stdout.strip() == "False"
