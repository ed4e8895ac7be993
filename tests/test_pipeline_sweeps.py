"""Sweep steps (one child run per trial) and the Dask executor, with real papermill, kernels and MLflow store."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_mlops import BackendUnavailable, InvalidInput, Workspace, cli, pipelines
from jupyter_mlops.pipelines import kernels, sweeps
from jupyter_mlops.pipelines.spec import SweepSpec
from jupyter_mlops.widgets.progress import NotebookProgress
from tests.test_pipelines import CONNECTION, _chain, _notebook, _states, _wait_for_running_step

# score = -(n - 3)^2 * scale: best at n = 3; n = 2 fails when `fail_two` is set
TRAIN = (
    "import json\nfrom pathlib import Path\n"
    "assert not (fail_two and n == 2), 'two is broken'\n"
    "Path(model).write_text(f'model n={n} scale={scale}')\n"
    "Path(metrics).write_text(json.dumps({'score': -(n - 3) ** 2 * scale, 'n': n, 'note': 'text is left out'}))"
)


def _sweep_spec(folder: Path, sweep: str, *, name: str = "sweep", fail_two: bool = False) -> Path:
    _notebook(folder / "train.ipynb", "n = 1\nscale = 1.0\nfail_two = False\nmodel = ''\nmetrics = ''", TRAIN)
    spec = folder / "pipeline.yaml"
    spec.write_text(
        f"name: {name}\nsteps:\n  train:\n    notebook: train.ipynb\n"
        f"    parameters: {{fail_two: {str(fail_two).lower()}}}\n"
        "    outputs: {model: out/model.txt, metrics: out/metrics.json}\n"
        f"    sweep: {sweep}\n"
    )
    return spec


def test_a_grid_sweep_runs_each_trial_as_a_child_run_keeps_the_best_outputs_and_is_reused(
    local_workspace: Workspace, tmp_path, capsys
):
    # Given a step sweeping n over four values, two trials at a time, maximizing the score the notebook writes
    spec = _sweep_spec(
        tmp_path, "{parameters: {n: [1, 2, 3, 4]}, metric: score, goal: maximize, max_parallel: 2}", name="grid"
    )
    workspace = ["--workspace", str(local_workspace.root)]

    # When the pipeline runs from the command line with --json
    assert cli.main(["pipeline", "run", str(spec), *workspace, "--json"]) == 0
    out, err = capsys.readouterr()
    record = json.loads(out)

    # Then each trial ran and the record carries the trials table
    step = record["steps"]["train"]
    assert step["status"] == "succeeded"
    assert [(t["trial"], t["parameters"], t["metric"], t["status"]) for t in step["trials"]] == [
        (1, {"n": 1}, -4.0, "succeeded"),
        (2, {"n": 2}, -1.0, "succeeded"),
        (3, {"n": 3}, 0.0, "succeeded"),
        (4, {"n": 4}, -1.0, "succeeded"),
    ]
    assert "[pipeline] train: sweeping: trial" in err
    # and each trial is a child run of the step's run, with its parameters, metrics and executed notebook
    client = local_workspace.client
    for trial in step["trials"]:
        run = client.get_run(trial["run_id"])
        assert run.data.tags["mlflow.parentRunId"] == step["run_id"]
        assert run.info.status == "FINISHED"
        assert run.data.params["n"] == str(trial["parameters"]["n"])
        assert run.data.metrics == {"score": trial["metric"], "n": trial["parameters"]["n"]}
        assert "notebook/train.ipynb" in {a.path for a in client.list_artifacts(trial["run_id"], "notebook")}
    # and the best trial's outputs are the step's outputs, logged on the step's run with the trials table
    assert (tmp_path / "out" / "model.txt").read_text() == "model n=3 scale=1.0"
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["n"] == 3
    step_run = client.get_run(step["run_id"])
    assert step_run.data.metrics["score"] == 0.0 and step_run.data.params["best.n"] == "3"
    assert step_run.data.tags["mlops.sweep.best_run_id"] == step["trials"][2]["run_id"]
    csv_text = Path(client.download_artifacts(step["run_id"], "sweep/trials.csv", str(tmp_path / "dl"))).read_text()
    assert csv_text.splitlines()[0] == "trial,n,score,status,run_id"
    assert len(csv_text.splitlines()) == 5
    assert not (local_workspace.root / "sweeps").exists() or not any((local_workspace.root / "sweeps").iterdir())

    # When it runs again with nothing changed (and the outputs deleted meanwhile)
    (tmp_path / "out" / "model.txt").unlink()
    started = kernels.kernels_started()
    again = pipelines.run(spec, workspace=local_workspace)
    # Then the sweep step is reused like any step: no kernel starts, the best outputs and the trials come back
    assert _states(again) == {"train": "reused"} and kernels.kernels_started() == started
    assert (tmp_path / "out" / "model.txt").read_text() == "model n=3 scale=1.0"
    assert again.steps["train"].trials == step["trials"]

    # When the sweep itself changes, the step executes again
    spec.write_text(spec.read_text().replace("[1, 2, 3, 4]", "[4, 5]"))
    changed = pipelines.run(spec, workspace=local_workspace)
    assert _states(changed) == {"train": "succeeded"}
    assert [t["parameters"] for t in changed.steps["train"].trials or []] == [{"n": 4}, {"n": 5}]
    assert (tmp_path / "out" / "model.txt").read_text() == "model n=4 scale=1.0"


def test_a_failed_trial_is_recorded_and_early_stop_leaves_the_remaining_trials_unrun(
    local_workspace: Workspace, tmp_path
):
    # Given trials n=2 (fails), n=3 (reaches the target score 0), n=1 and n=4, one at a time
    sweep = "{parameters: {n: [2, 3, 1, 4]}, metric: score, early_stop: {target: 0}}"
    spec = _sweep_spec(tmp_path, sweep, name="early", fail_two=True)
    # When it runs (in a notebook's progress display)
    display = NotebookProgress()
    result = pipelines.run(spec, workspace=local_workspace, progress=display)
    # Then the failed trial is in the table (its run FAILED), the target stopped the sweep after n=3
    trials = result.steps["train"].trials or []
    assert result.status == "FINISHED", result.summary()
    assert [(t["parameters"]["n"], t["status"]) for t in trials] == [
        (2, "failed"),
        (3, "succeeded"),
        (1, "stopped"),
        (4, "stopped"),
    ]
    assert "two is broken" in trials[0]["error"]
    assert local_workspace.client.get_run(trials[0]["run_id"]).info.status == "FAILED"
    assert trials[2]["run_id"] is None
    assert "trial 2   succeeded" in result.summary()
    # and the display showed the trials under their step as they finished
    assert display.trials["train"][0][0].startswith("trial 1/4 failed")
    assert 'trial 2/4</td><td style="color:#1a7f37">succeeded (score=0)' in display.html()


def test_a_sweep_whose_trials_all_fail_fails_the_step(local_workspace: Workspace, tmp_path):
    spec = _sweep_spec(tmp_path, "{parameters: {n: [2]}, metric: accuracy}", name="allfail", fail_two=False)
    result = pipelines.run(spec, workspace=local_workspace)
    assert result.status == "FAILED" and _states(result) == {"train": "failed"}
    error = local_workspace.client.get_run(result.steps["train"].run_id).data.tags["mlops.error"]
    assert error == ("all 1 trials failed; trial 1: the notebook's metrics output has no 'accuracy' (it has: score, n)")


def test_a_killed_runner_leaves_its_sweep_trials_killed_never_running(local_workspace: Workspace, tmp_path):
    # Given a CLI run busy in the trials of a sweep step named `slow`
    _notebook(tmp_path / "slow.ipynb", "n = 1\nmetrics = ''", "import time\ntime.sleep(30)")
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(
        "name: slow-sweep\nsteps:\n  slow:\n    notebook: slow.ipynb\n    outputs: {metrics: m.json}\n"
        "    sweep: {parameters: {n: [1, 2]}, metric: score, max_parallel: 2}\n"
    )
    local_workspace.experiment_id("warm-up")  # the store exists before two processes open it
    command = [sys.executable, "-m", "jupyter_mlops.cli", "pipeline", "run", str(spec)]
    process = subprocess.Popen(
        [*command, "--workspace", str(local_workspace.root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        run_id = _wait_for_running_step(local_workspace, "slow-sweep")
        experiment_id = local_workspace.client.get_run(run_id).info.experiment_id
        trial_filter = f"tags.`mlops.trial.pipeline_run` = '{run_id}' AND attributes.status = 'RUNNING'"
        deadline = time.monotonic() + 60
        while not local_workspace.client.search_runs([experiment_id], trial_filter):
            assert time.monotonic() < deadline, "no trial started"
            time.sleep(0.2)
        # When the runner is killed outright
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
    # Then the next look at the pipeline marks the run, its step and its trials KILLED
    assert [r.status for r in pipelines.runs("slow-sweep", workspace=local_workspace)] == ["KILLED"]
    trials = local_workspace.client.search_runs([experiment_id], f"tags.`mlops.trial.pipeline_run` = '{run_id}'")
    assert trials and {t.info.status for t in trials} == {"KILLED"}


def test_random_sampling_draws_max_trials_seeded_points_ints_for_int_ranges():
    spec = SweepSpec.model_validate(
        {
            "parameters": {"depth": {"min": 3, "max": 12}, "rate": {"min": 0.01, "max": 1}, "kind": ["a", "b"]},
            "sampling": "random",
            "max_trials": 20,
            "metric": "score",
        }
    )
    drawn = sweeps.points(spec)
    assert drawn == sweeps.points(spec)  # seeded: the same points every time
    assert len(drawn) == 20
    assert all(isinstance(p["depth"], int) and 3 <= p["depth"] <= 12 for p in drawn)
    assert all(isinstance(p["rate"], float) and 0.01 <= p["rate"] <= 1 for p in drawn)
    assert {p["kind"] for p in drawn} <= {"a", "b"}
    assert sweeps.points(spec.model_copy(update={"seed": 1})) != drawn
    grid = SweepSpec.model_validate({"parameters": {"a": [1, 2], "b": [3, 4, 5]}, "metric": "m", "max_trials": 4})
    assert sweeps.points(grid) == [{"a": 1, "b": 3}, {"a": 1, "b": 4}, {"a": 1, "b": 5}, {"a": 2, "b": 3}]


@pytest.mark.parametrize(
    ("sweep", "expected"),
    [
        (
            "{parameters: {n: [1], scale: {min: 0.5, max: 2}}, metric: score}",
            r"pipeline.yaml:7: steps.train.sweep.parameters.scale: a range \{min, max\} has no grid",
        ),
        (
            "{parameters: {n: {min: 1, max: 9}}, sampling: random, metric: score}",
            "pipeline.yaml:7: steps.train.sweep.sampling: random sampling needs max_trials",
        ),
        (
            "{parameters: {depth: [1, 2]}, metric: score}",
            "pipeline.yaml:7: steps.train.sweep.parameters.depth: train.ipynb does not declare depth in its "
            "`parameters` cell; it declares: n, scale, fail_two, model, metrics",
        ),
        (
            "{parameters: {n: {min: 9, max: 1}}, sampling: random, max_trials: 2, metric: score}",
            r"steps.train.sweep.parameters.n: min \(9\) is greater than max \(1\)",
        ),
        ("{parameters: {n: [1]}, metric: score, goal: up}", "pipeline.yaml:7: steps.train.sweep.goal"),
        (
            "{parameters: {n: [1]}, metric: score, trials: 3}",
            "steps.train.sweep.trials: Extra inputs are not permitted; allowed keys: parameters, sampling",
        ),
    ],
    ids=["range-in-grid", "random-without-max-trials", "undeclared", "min-above-max", "bad-goal", "unknown-key"],
)
def test_sweep_spec_errors_name_the_file_the_line_and_the_key(tmp_path, sweep, expected):
    spec = _sweep_spec(tmp_path, sweep)
    with pytest.raises(InvalidInput, match=expected):
        pipelines.validate(spec)


def test_a_sweep_needs_a_metrics_output(tmp_path):
    _sweep_spec(tmp_path, "{}")
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(
        "name: p\nsteps:\n  train:\n    notebook: train.ipynb\n    outputs: {model: m.txt}\n"
        "    sweep:\n      parameters: {n: [1, 2]}\n      metric: score\n"
    )
    with pytest.raises(InvalidInput, match=r"pipeline.yaml:8: steps.train.sweep.metric: a sweep reads 'score' from"):
        pipelines.validate(spec)


# -- the Dask executor ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[object]:
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
    )
    try:
        yield cluster
    finally:
        cluster.close()


def test_steps_and_sweep_trials_run_as_tasks_on_a_dask_cluster(local_workspace: Workspace, tmp_path, dask_cluster):
    workers = set(dask_cluster.scheduler_info["workers"])  # type: ignore[attr-defined]
    address = dask_cluster.scheduler_address  # type: ignore[attr-defined]
    # Given the a -> b -> c (+ d) chain
    spec = _chain(tmp_path / "chain", name="dask-chain")
    # When it runs on the cluster
    result = pipelines.run(spec, executor="dask", scheduler=address, workspace=local_workspace)
    # Then every step ran on a worker, and the runner recorded it as usual
    assert result.status == "FINISHED", result.summary()
    assert (tmp_path / "chain" / "out" / "c.txt").read_text() == "001"
    for name in "abcd":
        run = local_workspace.client.get_run(result.steps[name].run_id)
        assert run.data.tags["mlops.executor"] == "dask"
        assert run.data.tags["mlops.executor.worker"] in workers
        assert "notebook" in {a.path for a in local_workspace.client.list_artifacts(run.info.run_id)}
    # and a worker reaches the kernel it starts over IPC, as the runner does
    _notebook(tmp_path / "ipc" / "where.ipynb", "out = ''", CONNECTION)
    ipc_spec = tmp_path / "ipc" / "pipeline.yaml"
    ipc_spec.write_text("name: dask-ipc\nsteps:\n  where: {notebook: where.ipynb, outputs: {out: where.json}}\n")
    assert pipelines.run(ipc_spec, executor="dask", scheduler=address, workspace=local_workspace).succeeded
    assert json.loads((tmp_path / "ipc" / "where.json").read_text())["transport"] == "ipc"

    # Given a sweep step, When it runs on the cluster from the command line
    workspace = ["--workspace", str(local_workspace.root)]
    sweep_spec = _sweep_spec(tmp_path / "sweep", "{parameters: {n: [1, 3, 4]}, metric: score, max_parallel: 2}")
    code = cli.main(["pipeline", "run", str(sweep_spec), "--executor", "dask", "--scheduler", address, *workspace])
    # Then each trial was a task on a worker, and the best one's outputs are the step's
    assert code == 0
    [latest] = pipelines.runs("sweep", max_results=1, workspace=local_workspace)
    [step] = local_workspace.client.search_runs(
        [local_workspace.client.get_run(latest.run_id).info.experiment_id],
        f"tags.`mlflow.parentRunId` = '{latest.run_id}'",
    )
    trials = local_workspace.client.search_runs(
        [step.info.experiment_id], f"tags.`mlflow.parentRunId` = '{step.info.run_id}'"
    )
    assert len(trials) == 3 and {t.data.tags["mlops.executor.worker"] for t in trials} <= workers
    assert (tmp_path / "sweep" / "out" / "model.txt").read_text() == "model n=3 scale=1.0"


def test_a_dask_scheduler_that_does_not_answer_is_an_error_naming_its_address(
    local_workspace: Workspace, tmp_path, monkeypatch
):
    pytest.importorskip("distributed")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spec = _chain(tmp_path / "p", name="nowhere")
    address = f"tcp://127.0.0.1:{port}"
    with pytest.raises(BackendUnavailable, match=f"The Dask scheduler at {address} does not answer"):
        pipelines.run(spec, executor="dask", scheduler=address, workspace=local_workspace)
    with pytest.raises(InvalidInput, match="--executor dask needs --scheduler tcp://HOST:PORT"):
        pipelines.run(spec, executor="dask", workspace=local_workspace)
    # without Dask installed, the error says what to install
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(InvalidInput, match=r"pip install 'dask\[distributed\]'"):
        pipelines.run(spec, executor="dask", scheduler=address, workspace=local_workspace)
    # nothing was recorded: the checks come before the run
    assert local_workspace.client.get_experiment_by_name("nowhere") is None
