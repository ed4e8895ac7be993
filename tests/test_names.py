"""The one name rule: the same check for every kind of name, refused before anything is written."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from jupyter_mlops.exceptions import InvalidInput, NotFound
from jupyter_mlops.names import DNS_RULE, RULE, check_name

GOOD = ["churn", "Churn-v2", "my.model_1", "a", "9lives", "x" * 64]
BAD = [
    ("", "it is empty"),
    ("x" * 65, "65 characters"),
    ("x" * 5000, "5000 characters"),
    ("line\nbreak", "control character"),
    ("bell\x07", "control character"),
    ("a/b", "'/'"),
    ("back\\slash", "'\\\\'"),
    ("star*", "'*'"),
    ("per%cent", "'%'"),
    ("quo'te", '"\'"'),
    ("has space", "' '"),
    ("colon:3", "':'"),
    ("at@x", "'@'"),
    ("-leading", ""),
    (".hidden", ""),
    ("modèle", "'è'"),
]


@pytest.mark.parametrize("name", GOOD)
def test_good_names_pass(name):
    assert check_name(name, "model") == name


@pytest.mark.parametrize(("name", "why"), BAD)
@pytest.mark.parametrize("kind", ["model", "monitor", "pipeline", "subscription", "dataset", "endpoint"])
def test_bad_names_are_refused_naming_the_rule(name, why, kind):
    with pytest.raises(InvalidInput) as excinfo:
        check_name(name, kind)
    message = str(excinfo.value)
    assert f"valid {kind} name" in message and (DNS_RULE if kind == "endpoint" else RULE) in message
    assert why in message
    assert len(message) < 400  # a 5,000-character name is not echoed whole


def test_endpoints_and_deployments_are_dns_labels():
    assert check_name("blue-2", "deployment") == "blue-2"
    for name in ("Blue", "blue_2", "blue.2", "b" * 64):
        with pytest.raises(InvalidInput, match="lower-case"):
            check_name(name, "deployment")


def test_not_a_string_is_refused():
    with pytest.raises(InvalidInput, match="not a string"):
        check_name(3, "model")


def test_every_face_refuses_before_writing(local_workspace, tmp_path):
    ws = local_workspace
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"w")
    for bad in ("churn\n", "c*", "x" * 5000):
        with pytest.raises(InvalidInput, match="valid model name"):
            ws.models.register(weights, bad)
        with pytest.raises(InvalidInput, match="valid subscription name"):
            ws.events.subscribe(bad, callback=print)
        with pytest.raises(InvalidInput, match="valid dataset name"):
            ws.datasets.register(bad, pd.DataFrame({"a": [1]}))
    assert ws.models.list_models() == [] and ws.events.subscriptions() == [] and ws.datasets.list() == []
    assert ws.client.search_runs([ws.experiment_id("model-registrations")]) == []
    # the CLI says the same, in one line, without a traceback
    env = {**os.environ, "MLOPS_WORKSPACE": str(ws.root)}
    done = subprocess.run(
        [sys.executable, "-m", "jupyter_mlops.cli", "models", "register", "bad%name", str(weights)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0 and "valid model name" in done.stderr and "Traceback" not in done.stderr
    with pytest.raises(NotFound):
        ws.models.get_model("bad%name")


# -- what a registration may read ---------------------------------------------------------------------------------
def test_special_files_are_refused_before_reading(local_workspace, tmp_path):
    ws = local_workspace
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    with pytest.raises(InvalidInput, match="named pipe"):
        ws.models.register(pipe, "piped")  # would block forever if it were opened
    with pytest.raises(InvalidInput, match="character device"):
        ws.models.register("/dev/zero", "zeros")  # would never end
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"w")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(folder / "control.sock"))
        with pytest.raises(InvalidInput, match=r"control\.sock.*socket"):
            ws.models.register(folder, "with-socket")
    assert ws.models.list_models() == []
    runs = ws.client.search_runs([ws.experiment_id("model-registrations")])
    assert runs == []  # refused before a run was created


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """A folder nobody may write into, root included (root ignores permission bits, not the immutable flag)."""
    if os.geteuid() == 0:
        made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True, check=False)
        if made.returncode != 0:
            pytest.skip(
                f"this filesystem has no immutable flag ({made.stderr.strip()}): cannot make a folder read-only"
            )
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        os.chmod(folder, 0o500)
        try:
            yield
        finally:
            os.chmod(folder, 0o700)


def test_read_only_artifact_store_fails_cleanly(local_workspace, tmp_path):
    ws = local_workspace
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"w")
    ws.models.register(weights, "first")  # the stores and the experiment exist
    with read_only(ws.layout.artifacts / "model-registrations"), pytest.raises(InvalidInput, match="not writable"):
        ws.models.register(weights, "second")
    failed = ws.client.search_runs([ws.experiment_id("model-registrations")], "attributes.status = 'FAILED'")
    assert len(failed) == 1 and "not writable" in failed[0].data.tags["mlops.error"]
    with pytest.raises(NotFound):
        ws.models.get_model("second")


def test_vanishing_source_fails_cleanly_and_leaves_no_partial_upload(local_workspace, tmp_path, monkeypatch):
    """A file deleted while the folder is being copied: a clear error, the run FAILED, nothing left behind. The
    deletion is made to happen right after the first file is copied (a real race would make the test flaky)."""
    import mlflow.store.artifact.local_artifact_repo as local_repo

    ws = local_workspace
    folder = tmp_path / "model"
    folder.mkdir()
    for i in range(3):
        (folder / f"part{i}.bin").write_bytes(b"w" * 10)
    copy = local_repo.shutil.copy2
    copied: list[str] = []

    def copy_then_vanish(src, dst, *args, **kwargs):  # the real copy, then the rest of the folder disappears
        result = copy(src, dst, *args, **kwargs)
        copied.append(str(src))
        if len(copied) == 1:
            for path in folder.iterdir():
                if str(path) != str(src):
                    path.unlink()
        return result

    monkeypatch.setattr(local_repo.shutil, "copy2", copy_then_vanish)
    with pytest.raises(InvalidInput, match="Nothing was registered"):
        ws.models.register(folder, "vanishing")
    monkeypatch.undo()
    failed = ws.client.search_runs([ws.experiment_id("model-registrations")], "attributes.status = 'FAILED'")
    assert len(failed) == 1 and "disappeared" in failed[0].data.tags["mlops.error"]
    assert ws.client.list_artifacts(failed[0].info.run_id, "model") == []  # no partial upload
    with pytest.raises(NotFound):
        ws.models.get_model("vanishing")


def test_download_onto_a_file_is_a_clear_error(local_workspace, tmp_path):
    from jupyter_mlops.exceptions import Conflict

    ws = local_workspace
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"w")
    ws.models.register(weights, "churn")
    target = tmp_path / "taken"
    target.write_text("mine")
    with pytest.raises(Conflict, match="it is a file"):
        ws.models.download("churn", 1, target)
    assert target.read_text() == "mine"
