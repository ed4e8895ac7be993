"""Lineage across data files, pipeline runs, step runs, model versions and deployments, from real runs."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from jupyter_mlops import InvalidInput, Workspace, pipelines
from jupyter_mlops.lineage import lineage
from tests.test_pipelines import _chain


@pytest.fixture
def chained(local_workspace: Workspace, tmp_path):
    spec = _chain(tmp_path / "chain", name="lineage-chain")
    text = spec.read_text().replace(
        "outputs: {out: out/c.txt}}", "outputs: {out: out/c.txt}, register: {name: chained}}"
    )
    spec.write_text(text)
    result = pipelines.run(spec, workspace=local_workspace)
    assert result.status == "FINISHED"
    return local_workspace, result, tmp_path / "chain"


def _walk(node, direction: str):
    yield node
    for child in getattr(node, direction):
        yield from _walk(child, direction)


def test_a_model_version_from_a_pipeline_step(chained):
    ws, result, _ = chained
    node = lineage(ws, "chained:1")
    assert node.kind == "model_version"
    [step] = node.upstream
    assert step.id == result.steps["c"].run_id
    assert step.attrs["step"] == "c" and step.attrs["pipeline"] == "lineage-chain"
    assert step.attrs["notebook"].endswith("c.ipynb") and len(step.attrs["environment"]) == 12
    kinds = [(n.kind, n.id) for n in _walk(node, "upstream")]
    assert ("pipeline_run", result.run_id) in kinds
    runs = [n.id for n in _walk(node, "upstream") if n.kind == "run"]
    assert runs == [result.steps[s].run_id for s in "cba"]  # c <- b.out <- b <- a.out <- a


def test_a_data_file_and_what_used_it(chained):
    ws, result, folder = chained
    node = lineage(ws, str(folder / "out" / "a.txt"))
    assert [n.id for n in node.upstream] == [result.steps["a"].run_id]
    downstream = [n.id for n in _walk(node, "downstream") if n.kind == "run"]
    assert downstream[:2] == [result.steps["b"].run_id, result.steps["c"].run_id]
    assert "chained:1" in [n.id for n in _walk(node, "downstream")]
    text = node.to_text()
    assert "came from:" in text and "used by:" in text and "chained:1" in text


def test_a_job_with_a_dataset_and_the_deployment_that_serves_its_model(local_workspace: Workspace, tmp_path):
    from jupyter_mlops.store.schema import Deployment

    (tmp_path / "m.bin").write_bytes(b"x")
    with local_workspace.job(experiment="lineage", autolog=False) as job:
        job.log_dataset(pd.DataFrame({"a": [1, 2]}), name="tiny")
        version = local_workspace.models.register(tmp_path / "m.bin", "from-job")
    with local_workspace.store.session() as session:
        session.add(Deployment(endpoint="ep", name="blue", model_name="from-job", model_version=1, status="active"))
    node = lineage(local_workspace, f"from-job:{version.version}")
    assert [n.kind for n in node.downstream] == ["deployment"] and node.downstream[0].id == "ep/blue"
    [run] = node.upstream
    assert [(d.kind, d.label) for d in run.upstream] == [("dataset", "tiny")]
    html = node._repr_html_()
    assert "from-job:1" in html and "ep/blue" in html


def test_cli_and_bad_input(chained):
    ws, _, _ = chained
    out = subprocess.run(
        [sys.executable, "-m", "jupyter_mlops.cli", "lineage", "chained:1", "--workspace", str(ws.root), "--json"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    tree = json.loads(out.stdout)
    assert tree["kind"] == "model_version" and tree["upstream"][0]["attrs"]["step"] == "c"
    with pytest.raises(InvalidInput, match="Cannot tell what"):
        lineage(ws, "no-such-thing")
