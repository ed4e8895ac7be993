"""The model registry against a real MLflow store (local SQLite, and an mlflow server on PostgreSQL)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from jupyter_mlops import FilterSyntaxError, InvalidInput, ModelInUseError, NotFound, Workspace
from jupyter_mlops.store.schema import Deployment


@pytest.fixture(scope="module")
def iris_model():
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=300).fit(X, y), X


def _tree(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _multi_file_model(folder: Path) -> Path:
    (folder / "weights").mkdir(parents=True)
    (folder / "weights" / "layer0.bin").write_bytes(os.urandom(20_000))
    (folder / "weights" / "layer1.bin").write_bytes(os.urandom(333))
    (folder / "config.json").write_text('{"classes": 3}')
    (folder / "vocab.txt").write_bytes(b"a\nb\n\x00\xff binary tail")
    return folder


def test_register_sklearn_object_records_who_and_why(workspace: Workspace, model_name, iris_model):
    # Given a trained scikit-learn model
    model, X = iris_model
    # When it is registered with tags and a description
    version = workspace.models.register(model, model_name, tags={"stage": "candidate"}, description="baseline")
    # Then the record carries every field, and the version loads back as a standard MLflow model
    assert version.name == model_name and version.version == 1 and isinstance(version.version, int)
    assert version.tags == {"stage": "candidate"}
    assert version.description == "baseline"
    assert version.created_by == "tester"
    assert version.created_at is not None and version.run_id
    assert version.source
    fetched = workspace.models.get(model_name, 1)
    assert fetched == version
    import mlflow.pyfunc

    local = workspace.models.download(model_name, 1, workspace.root / "dl")
    predictions = mlflow.pyfunc.load_model(str(local)).predict(X[:5])
    assert list(predictions) == list(model.predict(X[:5]))


def test_versions_auto_increment(workspace: Workspace, model_name, tmp_path):
    model_file = tmp_path / "model.bin"
    model_file.write_bytes(b"weights")
    numbers = [workspace.models.register(model_file, model_name).version for _ in range(3)]
    assert numbers == [1, 2, 3]
    assert workspace.models.get(model_name).version == 3
    assert workspace.models.get_model(model_name).latest_version == 3


def test_multi_file_folder_downloads_byte_for_byte(workspace: Workspace, model_name, tmp_path):
    folder = _multi_file_model(tmp_path / "model")
    version = workspace.models.register(folder, model_name)
    dest = workspace.models.download(model_name, version.version, tmp_path / "downloaded")
    assert _tree(dest) == _tree(folder)
    assert len(_tree(dest)) == 4


def test_single_file_downloads_byte_for_byte(workspace: Workspace, model_name, tmp_path):
    model_file = tmp_path / "model.onnx"
    model_file.write_bytes(os.urandom(4096))
    workspace.models.register(model_file, model_name)
    dest = workspace.models.download(model_name, 1, tmp_path / "out")
    assert (dest / "model.onnx").read_bytes() == model_file.read_bytes()


def test_register_onnx_model_proto(local_workspace: Workspace, model_name, iris_model):
    import onnx
    from skl2onnx import to_onnx

    model, X = iris_model
    proto = to_onnx(model, X[:1].astype("float32"), options={"zipmap": False})
    version = local_workspace.models.register(proto, model_name)
    dest = local_workspace.models.download(model_name, version.version, local_workspace.root / "onnx")
    assert (dest / "MLmodel").is_file()
    reloaded = onnx.load(str(next(dest.glob("*.onnx"))))
    assert reloaded.graph.SerializeToString() == proto.graph.SerializeToString()


def test_register_python_model(local_workspace: Workspace, model_name):
    import mlflow.pyfunc

    class Doubler(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return [2 * x for x in model_input]

    version = local_workspace.models.register(Doubler(), model_name)
    loaded = mlflow.pyfunc.load_model(version.source)
    assert loaded.predict([1, 2]) == [2, 4]


def test_register_from_runs_uri(workspace: Workspace, model_name, tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "w.bin").write_bytes(b"\x01\x02")
    with workspace.job(experiment="registry-tests", autolog=False) as job:
        workspace.client.log_artifacts(job.run_id, str(tmp_path / "model"), "trained")
    version = workspace.models.register(f"runs:/{job.run_id}/trained", model_name)
    assert version.run_id == job.run_id
    dest = workspace.models.download(model_name, version.version, tmp_path / "dl")
    assert (dest / "w.bin").read_bytes() == b"\x01\x02"


def test_register_inside_a_job_links_the_version_to_the_run(local_workspace: Workspace, model_name, iris_model):
    with local_workspace.job(experiment="training", autolog=False) as job:
        version = local_workspace.models.register(iris_model[0], model_name)
    assert version.run_id == job.run_id


def test_concurrent_registration_from_two_processes(workspace: Workspace, model_name, tmp_path):
    # Given two processes that each register 5 versions of the same new model at the same time
    script = tmp_path / "register.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            from pathlib import Path
            from jupyter_mlops import Workspace
            ws = Workspace({str(workspace.root)!r}, metadata_uri={workspace.metadata_uri!r},
                           tracking_uri={None if workspace.is_local else workspace.tracking_uri!r})
            f = Path(sys.argv[1]); f.write_text(sys.argv[1])
            for _ in range(5):
                print(ws.models.register(f, {model_name!r}).version, flush=True)
            """
        )
    )
    procs = [
        subprocess.Popen([sys.executable, str(script), str(tmp_path / f"w{i}.bin")], stdout=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    # Then the ten versions are distinct and consecutive, and none is lost
    seen = sorted(int(line) for out in outputs for line in out.split())
    assert seen == list(range(1, 11))
    assert sorted(v.version for v in workspace.models.list(f"name={model_name}")) == list(range(1, 11))


def test_filter_syntax(workspace: Workspace, model_name, tmp_path):
    f = tmp_path / "m.bin"
    f.write_bytes(b"x")
    workspace.models.register(f, model_name, tags={"stage": "prod", "team": "risk"})
    workspace.models.register(f, model_name, tags={"stage": "dev", "validated": "yes"})
    workspace.models.register(f, f"{model_name}-other", tags={"stage": "prod"})

    def versions(filter_text: str) -> list[tuple[str, int]]:
        return [(v.name, v.version) for v in workspace.models.list(filter_text) if v.name.startswith(model_name)]

    assert versions("stage=prod") == [(model_name, 1), (f"{model_name}-other", 1)]
    assert versions("stage=prod,team=risk") == [(model_name, 1)]
    assert versions("validated") == [(model_name, 2)]
    assert versions(f"name={model_name}-o*") == [(f"{model_name}-other", 1)]
    assert versions(f"name={model_name}*,stage=dev") == [(model_name, 2)]


@pytest.mark.parametrize("bad", ["stage==prod", "=prod", "stage=prod,,team=x", "stage='prod'", "a b"])
def test_unparseable_filter_shows_the_syntax(local_workspace: Workspace, bad):
    with pytest.raises(FilterSyntaxError) as excinfo:
        local_workspace.models.list(bad)
    assert "TagName=TagValue" in str(excinfo.value) and "Examples" in str(excinfo.value)


def test_tags_aliases_and_archive(workspace: Workspace, model_name, tmp_path):
    f = tmp_path / "m.bin"
    f.write_bytes(b"x")
    workspace.models.register(f, model_name)
    workspace.models.register(f, model_name)
    # tags set and unset after registration
    assert workspace.models.set_tags(model_name, 1, {"stage": "prod", "owner": "ana"}).tags == {
        "stage": "prod",
        "owner": "ana",
    }
    assert workspace.models.delete_tags(model_name, 1, ["owner"]).tags == {"stage": "prod"}
    with pytest.raises(NotFound, match="no tag 'nope'"):
        workspace.models.delete_tags(model_name, 1, ["nope"])
    # aliases
    workspace.models.set_alias(model_name, "champion", 1)
    workspace.models.set_alias(model_name, "challenger", 2)
    assert workspace.models.get(model_name, "champion").version == 1
    assert workspace.models.get(model_name, "challenger").aliases == ["challenger"]
    assert workspace.models.get_model(model_name).aliases == {"champion": 1, "challenger": 2}
    workspace.models.set_alias(model_name, "champion", 2)
    assert workspace.models.get(model_name, 2).aliases == ["challenger", "champion"]
    workspace.models.delete_alias(model_name, "challenger")
    assert workspace.models.get_model(model_name).aliases == {"champion": 2}
    with pytest.raises(InvalidInput):
        workspace.models.set_alias(model_name, "7", 1)
    # archive hides from listings, restore brings it back
    assert workspace.models.archive(model_name, 1).archived
    assert [v.version for v in workspace.models.list(f"name={model_name}")] == [2]
    assert [v.version for v in workspace.models.list(f"name={model_name}", include_archived=True)] == [1, 2]
    workspace.models.archive(model_name, 1, archived=False)
    assert [v.version for v in workspace.models.list(f"name={model_name}")] == [1, 2]


def _add_deployment(ws: Workspace, model: str, version: int, endpoint: str, name: str, status="active") -> None:
    with ws.store.session() as session:
        session.add(Deployment(endpoint=endpoint, name=name, model_name=model, model_version=version, status=status))


def test_delete_refused_while_deployed(workspace: Workspace, model_name, tmp_path):
    f = tmp_path / "m.bin"
    f.write_bytes(b"x")
    workspace.models.register(f, model_name)
    workspace.models.register(f, model_name)
    _add_deployment(workspace, model_name, 1, f"ep-{model_name}", "blue")
    _add_deployment(workspace, model_name, 1, f"ep2-{model_name}", "green")
    _add_deployment(workspace, model_name, 2, f"ep-{model_name}", "old", status="deleted")

    with pytest.raises(ModelInUseError) as excinfo:
        workspace.models.delete(model_name, 1)
    assert excinfo.value.deployments == [f"ep-{model_name}/blue", f"ep2-{model_name}/green"]
    assert f"ep-{model_name}/blue" in str(excinfo.value) and f"ep2-{model_name}/green" in str(excinfo.value)
    with pytest.raises(ModelInUseError):
        workspace.models.delete(model_name)  # the whole model: version 1 is deployed
    with pytest.raises(ModelInUseError):
        workspace.models.delete(model_name, 1, force=True)  # force does not override a live deployment
    # an inactive deployment does not block: version 2 goes
    assert workspace.models.delete(model_name, 2) == [2]
    assert [v.version for v in workspace.models.list(f"name={model_name}")] == [1]


def test_delete_refused_while_an_alias_points_at_it_unless_forced(workspace: Workspace, model_name, tmp_path):
    f = tmp_path / "m.bin"
    f.write_bytes(b"x")
    workspace.models.register(f, model_name)
    workspace.models.register(f, model_name)
    workspace.models.set_alias(model_name, "champion", 1)
    with pytest.raises(ModelInUseError, match="champion") as excinfo:
        workspace.models.delete(model_name, 1)
    assert excinfo.value.aliases == ["champion"]
    assert workspace.models.get(model_name, "champion").version == 1  # nothing was lost
    assert workspace.models.delete(model_name, 1, force=True) == [1]
    assert workspace.models.get_model(model_name).aliases == {}
    with pytest.raises(NotFound):
        workspace.models.get(model_name, 1)
    # the whole model
    workspace.models.set_alias(model_name, "champion", 2)
    with pytest.raises(ModelInUseError):
        workspace.models.delete(model_name)
    assert workspace.models.delete(model_name, force=True) == [2]
    with pytest.raises(NotFound):
        workspace.models.get_model(model_name)


# -- bad input ------------------------------------------------------------------------------------------------
def test_unknown_model_suggests_close_names(workspace: Workspace, model_name, tmp_path):
    f = tmp_path / "m.bin"
    f.write_bytes(b"x")
    workspace.models.register(f, model_name)
    typo = model_name[:-1] + ("x" if model_name[-1] != "x" else "y")
    with pytest.raises(NotFound) as excinfo:
        workspace.models.get(typo)
    assert f"Did you mean {model_name!r}" in str(excinfo.value)
    assert model_name in excinfo.value.data["models"]


def test_unknown_version_lists_the_versions(workspace: Workspace, model_name, tmp_path):
    f = tmp_path / "m.bin"
    f.write_bytes(b"x")
    workspace.models.register(f, model_name)
    workspace.models.register(f, model_name)
    with pytest.raises(NotFound, match=r"no version or alias '7'. Versions: 1, 2"):
        workspace.models.get(model_name, 7)
    with pytest.raises(NotFound, match="Versions: 1, 2"):
        workspace.models.get(model_name, "champion")


def test_missing_path_registers_nothing(workspace: Workspace, model_name, tmp_path):
    with pytest.raises(InvalidInput, match="does not exist; nothing was registered"):
        workspace.models.register(tmp_path / "nope", model_name)
    with pytest.raises(NotFound):
        workspace.models.get_model(model_name)


def test_unsupported_object_says_which_types_are(workspace: Workspace, model_name):
    with pytest.raises(InvalidInput) as excinfo:
        workspace.models.register({"not": "a model"}, model_name)
    message = str(excinfo.value)
    assert "builtins.dict" in message and "scikit-learn" in message and "ONNX" in message
    with pytest.raises(NotFound):
        workspace.models.get_model(model_name)


def test_runs_uri_without_artifacts_registers_nothing(local_workspace: Workspace, model_name):
    with local_workspace.job(autolog=False) as job:
        pass
    with pytest.raises(InvalidInput, match="no artifacts under 'missing'"):
        local_workspace.models.register(f"runs:/{job.run_id}/missing", model_name)
    with pytest.raises(NotFound):
        local_workspace.models.get_model(model_name)


def test_refused_version_leaves_no_empty_model(workspace: Workspace, model_name, tmp_path):
    # Given a registration MLflow refuses at version creation (a tag key longer than MLflow allows)
    f = tmp_path / "m.bin"
    f.write_bytes(b"x")
    with pytest.raises(InvalidInput):
        workspace.models.register(f, model_name, tags={"k" * 300: "v"})
    # Then no half-registered (empty) model is left behind
    with pytest.raises(NotFound):
        workspace.models.get_model(model_name)


def test_listings_show_aliases(workspace: Workspace, model_name, tmp_path):
    f = tmp_path / "m.bin"
    f.write_bytes(b"x")
    workspace.models.register(f, model_name)
    workspace.models.register(f, model_name)
    workspace.models.register(f, f"{model_name}-b")
    workspace.models.set_alias(model_name, "champion", 2)
    workspace.models.set_alias(f"{model_name}-b", "champion", 1)
    listed = {(v.name, v.version): v.aliases for v in workspace.models.list(f"name={model_name}*")}
    assert listed == {(model_name, 1): [], (model_name, 2): ["champion"], (f"{model_name}-b", 1): ["champion"]}
    assert workspace.models.get(model_name).aliases == ["champion"]  # the latest version
