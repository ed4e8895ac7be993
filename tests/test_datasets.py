"""Versioned datasets on the real metadata store: content-hash identity, profiles, usage by real runs."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from jupyter_mlops import InvalidInput, NotFound, Workspace


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"age": [31, 45, None, 52], "plan": ["a", "b", "b", "c"], "churned": [0, 1, 0, 1]})


def test_same_content_same_version_new_content_new_version(local_workspace: Workspace, frame, tmp_path):
    first = local_workspace.datasets.register("customers", frame, description="May extract")
    assert first.version == 1 and len(first.digest) == 64 and first.created_by == "tester"
    assert local_workspace.datasets.register("customers", frame.copy()).version == 1
    frame.to_csv(tmp_path / "c.csv", index=False)
    changed = frame.assign(age=frame["age"].fillna(40))
    assert local_workspace.datasets.register("customers", changed).version == 2
    assert [d.version for d in local_workspace.datasets.list()] == [1, 2]
    assert local_workspace.datasets.get("customers").version == 2


def test_profile(local_workspace: Workspace, frame):
    version = local_workspace.datasets.register("customers", frame)
    profile = version.profile
    assert profile["rows"] == 4
    assert profile["columns"]["age"]["nulls"] == 1 and profile["columns"]["age"]["max"] == 52
    assert profile["columns"]["plan"]["distinct"] == 3 and profile["columns"]["plan"]["dtype"] == "object"


def test_usage_by_runs(local_workspace: Workspace, frame):
    local_workspace.datasets.register("customers", frame)
    with local_workspace.job(experiment="ds", autolog=False) as job:
        loaded = local_workspace.datasets.load("customers")
    pd.testing.assert_frame_equal(loaded, frame)
    [use] = local_workspace.datasets.usage("customers", 1)
    assert use.run_id == job.run_id and use.context == "training"
    inputs = local_workspace.client.get_run(job.run_id).inputs.dataset_inputs
    assert [i.dataset.name for i in inputs] == ["customers:1"]
    local_workspace.datasets.load("customers")  # outside a job: nothing recorded
    assert len(local_workspace.datasets.usage("customers")) == 1


def test_two_processes_registering_the_same_content_get_one_version(local_workspace: Workspace, frame, tmp_path):
    path = tmp_path / "data.parquet"
    frame.to_parquet(path)
    script = textwrap.dedent(
        f"""
        from jupyter_mlops import Workspace
        print(Workspace({str(local_workspace.root)!r}).datasets.register("shared", {str(path)!r}).version)
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    versions = [int(p.communicate(timeout=120)[0].split()[-1]) for p in procs]
    assert versions == [1, 1]
    assert [d.version for d in local_workspace.datasets.list()] == [1]


def test_bad_input(local_workspace: Workspace, tmp_path):
    with pytest.raises(InvalidInput, match="does not exist"):
        local_workspace.datasets.register("x", tmp_path / "missing.csv")
    with pytest.raises(InvalidInput, match="DataFrame or a CSV"):
        local_workspace.datasets.register("x", [1, 2])
    with pytest.raises(InvalidInput, match="at least one row"):
        local_workspace.datasets.register("x", pd.DataFrame())
    with pytest.raises(NotFound, match="No dataset nope"):
        local_workspace.datasets.get("nope")


def test_a_pipeline_step_reads_a_registered_dataset(local_workspace: Workspace, frame, tmp_path):
    from jupyter_mlops import pipelines
    from tests.test_pipelines import _notebook

    local_workspace.datasets.register("customers", frame)
    local_workspace.datasets.register("customers", frame.assign(churned=1))
    folder = tmp_path / "p"
    _notebook(
        folder / "count.ipynb",
        "data = None\nout = None",
        "import pandas as pd\nfrom pathlib import Path\n"
        "Path(out).write_text(str(pd.read_parquet(data)['churned'].sum()))",
    )
    spec = folder / "pipeline.yaml"
    spec.write_text(
        "name: uses-data\nsteps:\n"
        "  count: {notebook: count.ipynb, inputs: {data: 'dataset:customers:1'}, outputs: {out: out.txt}}\n"
    )
    result = pipelines.run(spec, workspace=local_workspace)
    assert result.status == "FINISHED" and (folder / "out.txt").read_text() == "2"
    [use] = local_workspace.datasets.usage("customers", 1)
    assert use.run_id == result.steps["count"].run_id and use.context == "input:data"
    spec.write_text(spec.read_text().replace("customers:1", "customers:7"))
    failed = pipelines.run(spec, workspace=local_workspace)
    assert failed.status == "FAILED" and failed.steps["count"].status == "failed"
    tags = local_workspace.client.get_run(failed.run_id).data.tags
    assert "No dataset customers:7; versions: [1, 2]" in tags["mlops.error"]
