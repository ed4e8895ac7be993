"""Where things live, the metadata store's migrations, and writers that run at once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from jupyter_mlops import BackendUnavailable, InvalidInput, Workspace
from jupyter_mlops.store import MetadataStore
from jupyter_mlops.store.schema import Deployment


def test_resolution_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # default: ./mlops-workspace next to the notebook (the current folder)
    ws = Workspace()
    assert ws.root == tmp_path / "mlops-workspace"
    assert ws.tracking_uri == f"sqlite:///{tmp_path / 'mlops-workspace' / 'mlflow.db'}"
    assert ws.metadata_uri == f"sqlite:///{tmp_path / 'mlops-workspace' / 'mlops.db'}"
    # MLOPS_WORKSPACE
    monkeypatch.setenv("MLOPS_WORKSPACE", str(tmp_path / "from-env"))
    assert Workspace().root == tmp_path / "from-env"
    # MLOPS_TRACKING_URI
    monkeypatch.setenv("MLOPS_TRACKING_URI", "http://127.0.0.1:5999")
    assert Workspace().tracking_uri == "http://127.0.0.1:5999" and not Workspace().is_local
    # an explicit argument wins over the environment
    explicit = Workspace(tmp_path / "explicit")
    assert explicit.root == tmp_path / "explicit" and explicit.is_local


def test_local_workspace_holds_stores_and_artifacts(local_workspace: Workspace, tmp_path):
    (tmp_path / "m.bin").write_bytes(b"x")
    version = local_workspace.models.register(tmp_path / "m.bin", "m")
    local_workspace.models.delete("m", 1)  # the deletion guard opens the metadata store
    root = local_workspace.root
    assert (root / "mlflow.db").is_file() and (root / "mlops.db").is_file()
    assert version.source.startswith((root / "artifacts").as_uri())


@pytest.fixture
def unwritable_folder(tmp_path):
    """A folder nobody may write to: read-only permissions, and immutable when running as root."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = os.geteuid() == 0
    if immutable and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("running as root on a filesystem without chattr +i: no folder is unwritable for root here")
    yield folder
    if immutable:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    folder.chmod(0o755)


def test_workspace_folder_not_writable(unwritable_folder):
    with pytest.raises(InvalidInput, match="is not writable") as excinfo:
        Workspace(unwritable_folder)
    assert "--workspace" in str(excinfo.value)


def test_workspace_folder_cannot_be_created(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(InvalidInput, match="Cannot create the workspace folder") as excinfo:
        Workspace(tmp_path / "a-file" / "ws")
    assert "--workspace" in str(excinfo.value)


def test_tracking_uri_that_does_not_answer(tmp_path):
    ws = Workspace(tmp_path, tracking_uri="http://127.0.0.1:9")
    with pytest.raises(BackendUnavailable) as excinfo:
        ws.models.list()
    message = str(excinfo.value)
    assert "http://127.0.0.1:9" in message and "mlflow server" in message


def test_metadata_store_is_migrated_to_head(local_workspace: Workspace):
    assert local_workspace.store.current_revision() == MetadataStore.head_revision()


def test_the_migrations_build_what_the_models_describe(local_workspace: Workspace):
    import importlib
    import pkgutil

    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import jupyter_mlops.store
    from jupyter_mlops.store.schema import Base

    for module in pkgutil.iter_modules(jupyter_mlops.store.__path__):
        importlib.import_module(f"jupyter_mlops.store.{module.name}")
    with local_workspace.store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    # alembic's own version table is the only thing the models do not describe
    assert [d for d in differences if not (d[0] == "remove_table" and d[1].name == "mlops_alembic_version")] == []


def test_metadata_store_on_postgres(shared_store, tmp_path):
    _, metadata_uri = shared_store
    store = MetadataStore(metadata_uri)
    assert store.current_revision() == MetadataStore.head_revision()
    with store.session() as session:
        session.add(Deployment(endpoint="pg", name="blue", model_name="m", model_version=1, status="active"))
    with store.session() as session:
        assert session.query(Deployment).filter_by(endpoint="pg").count() == 1


def test_two_processes_writing_at_once_never_corrupt_the_store(tmp_path):
    # Given a fresh workspace that two processes open (and migrate) and write to at the same time
    ws_dir = tmp_path / "ws"
    script = tmp_path / "writer.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            from jupyter_mlops import Workspace
            from jupyter_mlops.store.schema import Deployment
            ws = Workspace({str(ws_dir)!r})
            for i in range(100):
                with ws.store.session() as s:
                    s.add(Deployment(endpoint=sys.argv[1], name=f"d{{i}}", model_name="m", model_version=i,
                                     status="active"))
            """
        )
    )
    procs = [
        subprocess.Popen([sys.executable, str(script), f"ep{i}"], stderr=subprocess.PIPE, text=True) for i in (1, 2)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    # Then every row of both is there and the database is intact
    store = Workspace(ws_dir).store
    with store.session() as session:
        assert session.query(Deployment).count() == 200
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"


def test_future_migrations_extend_an_existing_workspace(local_workspace: Workspace):
    # An existing workspace at head is left alone on reopen (no error, same revision, data kept)
    with local_workspace.store.session() as session:
        session.add(Deployment(endpoint="e", name="d", model_name="m", model_version=1, status="active"))
    reopened = Workspace(local_workspace.root)
    assert reopened.store.current_revision() == MetadataStore.head_revision()
    with reopened.store.session() as session:
        assert session.query(Deployment).count() == 1
