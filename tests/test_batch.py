"""Batch endpoints: real worker processes scoring real files, retries, error threshold, resume, the recorded job."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pytest

from jupyter_mlops import Conflict, InvalidInput, MlopsError, NotFound, Workspace


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=300).fit(X.to_numpy(np.float32), y)
    workspace = Workspace(tmp_path_factory.mktemp("batch") / "ws")
    workspace.models.register(model, "iris")
    workspace.models.register(to_onnx(model, X.to_numpy(np.float32)[:1], options={"zipmap": False}), "iris")
    return workspace


@pytest.fixture
def folder(tmp_path) -> Path:
    from sklearn.datasets import load_iris

    X, _ = load_iris(return_X_y=True, as_frame=True)
    data = tmp_path / "input"
    (data / "nested").mkdir(parents=True)
    for i in range(5):
        X.iloc[i * 30 : (i + 1) * 30].to_csv(data / f"part-{i}.csv", index=False)
    X.iloc[:10].to_parquet(data / "nested" / "extra.parquet")
    (data / "README.txt").write_text("not data")
    return data


def test_append_row_writes_every_prediction_with_its_file_and_row(ws, folder):
    ws.batch.create("iris-onnx", "iris:2", mini_batch_size=2, max_concurrency=2)
    result = ws.batch.invoke("iris-onnx", folder, progress=False)
    assert result.status == "succeeded" and result.files == 6 and result.mini_batches == 3
    assert result.rows == 160 and result.failed_mini_batches == 0
    predictions = pd.read_csv(result.output)
    assert len(predictions) == 160 and list(predictions.columns) == ["file", "row", "prediction"]
    assert set(predictions["file"]) == {f"part-{i}.csv" for i in range(5)} | {"extra.parquet"}
    assert predictions.query("file == 'part-0.csv' and row == 0")["prediction"].item() == 0
    run = ws.runs.get(result.run_id)
    assert run.status == "FINISHED" and run.metrics["rows"] == 160 and run.experiment == "batch-iris-onnx"


def test_pyfunc_model_and_summary_only(ws, folder):
    ws.batch.create("iris-summary", "iris:1", output_action="summary_only", max_concurrency=1)
    result = ws.batch.invoke("iris-summary", folder, progress=False)
    assert result.rows == 160 and result.output is None


def test_mini_batches_keep_every_worker_busy(ws, folder):
    ws.batch.create("iris-spread", "iris:2")  # at most 10 files a mini-batch, 2 workers: 6 files in 2 of 3
    result = ws.batch.invoke("iris-spread", folder, progress=False)
    assert result.mini_batches == 2 and result.rows == 160


def test_reinvoking_skips_finished_mini_batches(ws, folder):
    ws.batch.create("iris-resume", "iris:2", mini_batch_size=1)
    first = ws.batch.invoke("iris-resume", folder, progress=False)
    parts = sorted((Path(first.output).parent / "parts").glob("*.parquet"))
    parts[0].unlink()  # as if the process had died before this one finished
    second = ws.batch.invoke("iris-resume", folder, progress=False)
    assert second.skipped_mini_batches == first.mini_batches - 1 and second.rows == 160


def test_failing_mini_batches_are_retried_then_counted_against_the_threshold(ws, folder, tmp_path):
    script = tmp_path / "score.py"
    script.write_text(
        textwrap.dedent(
            """
            import pandas as pd

            def init():
                pass

            def run(mini_batch):
                if any("part-3" in path for path in mini_batch):
                    raise RuntimeError("this file is corrupt")
                return pd.DataFrame({"rows": [len(pd.read_csv(p)) if p.endswith(".csv") else 0 for p in mini_batch]})
            """
        )
    )
    ws.batch.create("tolerant", "iris:1", scoring_script=script, mini_batch_size=1, retries=1, error_threshold=1)
    result = ws.batch.invoke("tolerant", folder, progress=False)
    assert result.status == "succeeded" and result.failed_mini_batches == 1 and result.rows == 5
    ws.batch.create("strict", "iris:1", scoring_script=script, mini_batch_size=1, retries=0, error_threshold=0)
    with pytest.raises(MlopsError, match="error_threshold=0"):
        ws.batch.invoke("strict", folder, progress=False)
    failed_runs = [r for r in ws.runs.list("batch-strict") if r.status == "FAILED"]
    assert len(failed_runs) == 1


def test_bad_input(ws, tmp_path):
    with pytest.raises(InvalidInput, match="output_action"):
        ws.batch.create("x", "iris:1", output_action="everything")
    with pytest.raises(NotFound, match="no version or alias '9'"):
        ws.batch.create("x", "iris:9")
    ws.batch.create("dup", "iris:1")
    with pytest.raises(Conflict):
        ws.batch.create("dup", "iris:1")
    with pytest.raises(InvalidInput, match="does not exist"):
        ws.batch.invoke("dup", tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="no CSV or Parquet"):
        ws.batch.invoke("dup", tmp_path / "empty")
    with pytest.raises(NotFound, match="No batch endpoint named 'nope'"):
        ws.batch.invoke("nope", tmp_path)


def test_cli(ws, folder):
    import json
    import subprocess
    import sys

    def cli(*args: str) -> dict:
        out = subprocess.run(
            [sys.executable, "-m", "jupyter_mlops.cli", "batch", *args, "--workspace", str(ws.root), "--json"],
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    assert cli("create", "iris-cli", "iris:2", "--mini-batch-size", "3")["mini_batch_size"] == 3
    assert cli("create", "iris-cli-model", "iris:1", "--no-onnx")["onnx"] is False
    assert cli("invoke", "iris-cli", str(folder))["rows"] == 160
    assert "iris-cli" in [b["name"] for b in cli("list")]
    cli("delete", "iris-cli")


def test_a_proven_onnx_conversion_is_scored_unless_declined(tmp_path, folder):
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    from jupyter_mlops.deploy.onnx import convert_to_onnx

    # Given a scikit-learn model and its ONNX conversion (version 2)
    X, y = load_iris(return_X_y=True, as_frame=True)
    ws = Workspace(tmp_path / "ws")
    ws.models.register(DecisionTreeClassifier(random_state=0).fit(X, y), "tree")
    convert_to_onnx(ws, "tree:1", X)
    # When batch endpoints on version 1 score the same files, one declining ONNX
    ws.batch.create("converted", "tree:1")
    ws.batch.create("original", "tree:1", onnx=False)
    converted = ws.batch.invoke("converted", folder, progress=False)
    original = ws.batch.invoke("original", folder, progress=False)
    # Then the first scored the conversion, the second the original, with the same predictions
    tags = {run.run_id: ws.client.get_run(run.run_id).data.tags for run in (converted, original)}
    assert tags[converted.run_id]["mlops.model"] == "tree:2" and tags[original.run_id]["mlops.model"] == "tree:1"
    assert tags[converted.run_id]["mlops.requested_model"] == "tree:1"
    assert pd.read_csv(converted.output).equals(pd.read_csv(original.output))
    assert ws.batch.get("original").onnx is False and ws.batch.get("converted").onnx is True


def test_workers_print_no_library_warning_per_mini_batch(ws, folder, capfd):
    # Given a pickled model fitted on an array (version 1) scoring files with named columns, one file a mini-batch
    ws.batch.create("iris-quiet", "iris:1", mini_batch_size=1, max_concurrency=1, onnx=False)
    result = ws.batch.invoke("iris-quiet", folder, progress=False)
    # Then the worker scored every file and printed nothing about feature names (nor any other warning)
    assert result.rows == 160 and result.mini_batches == 6
    printed = capfd.readouterr().err
    assert "feature names" not in printed and "Warning" not in printed, printed


def test_a_conversion_refuses_in_batch_what_its_source_refuses(tmp_path, folder):
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from jupyter_mlops.deploy.onnx import convert_to_onnx

    # Given a LogisticRegression and its conversion, and a folder where one file holds a missing value
    X, y = load_iris(return_X_y=True, as_frame=True)
    ws = Workspace(tmp_path / "ws")
    ws.models.register(LogisticRegression(max_iter=300).fit(X, y), "lr")
    convert_to_onnx(ws, "lr:1", X)
    broken = pd.read_csv(folder / "part-2.csv")
    broken.iloc[3, 1] = np.nan
    broken.to_csv(folder / "part-2.csv", index=False)
    # When both score the folder, one file a mini-batch
    for name, onnx in (("lr-onnx", True), ("lr-pickled", False)):
        ws.batch.create(name, "lr:1", mini_batch_size=1, retries=0, onnx=onnx)
    converted = ws.batch.invoke("lr-onnx", folder, progress=False)
    pickled = ws.batch.invoke("lr-pickled", folder, progress=False)
    # Then the conversion fails that file's mini-batch, as scikit-learn does, and agrees on every other row
    assert ws.client.get_run(converted.run_id).data.tags["mlops.model"] == "lr:2"
    assert (converted.failed_mini_batches, pickled.failed_mini_batches) == (1, 1)
    assert converted.rows == pickled.rows == 130
    assert pd.read_csv(converted.output).equals(pd.read_csv(pickled.output))
