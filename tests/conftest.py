"""Fixtures: a local workspace in a temporary folder, and a shared one (mlflow server on PostgreSQL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from jupyter_mlops import Workspace
from jupyter_mlops import workspace as workspace_module
from tests.services import MlflowServer, Postgres, ServiceUnavailable


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests never see the developer's workspace settings nor write next to the repository."""
    for var in ("MLOPS_WORKSPACE", "MLOPS_TRACKING_URI", "MLOPS_METADATA_URI", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLOPS_USER", "tester")
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    monkeypatch.setattr(workspace_module, "_default", None)  # each test builds its own default workspace


@pytest.fixture
def local_workspace(tmp_path) -> Workspace:
    return Workspace(tmp_path / "ws")


@pytest.fixture(scope="session")
def shared_store() -> Iterator[tuple[str, str]]:
    """(tracking URI, metadata URL) of a real mlflow server on a private PostgreSQL cluster."""
    if os.environ.get("MLOPS_SKIP_SERVER_TESTS"):
        pytest.skip("MLOPS_SKIP_SERVER_TESTS is set: the shared-store (PostgreSQL) tests are skipped")
    try:
        postgres = Postgres.start()
    except ServiceUnavailable as exc:
        pytest.skip(f"shared-store tests skipped: {exc}")
    try:
        backend = postgres.create_database("mlflow")
        metadata = postgres.create_database("mlops")
        server = MlflowServer.start(backend)
    except BaseException:
        postgres.stop()
        raise
    try:
        yield server.url, metadata
    finally:
        server.stop()
        postgres.stop()


@pytest.fixture
def server_workspace(shared_store, tmp_path) -> Workspace:
    tracking_uri, metadata_uri = shared_store
    return Workspace(tmp_path / "ws", tracking_uri=tracking_uri, metadata_uri=metadata_uri)


@pytest.fixture(params=["local", pytest.param("server", marks=pytest.mark.server)])
def workspace(request) -> Workspace:
    """Each test using it runs twice: on the local workspace store and on the shared mlflow server."""
    return request.getfixturevalue(f"{request.param}_workspace")


@pytest.fixture
def model_name() -> str:
    """A name no other test uses (the shared server outlives single tests)."""
    return f"model-{uuid.uuid4().hex[:8]}"


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks into the node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under `pytest -n` (pytest-xdist, `--dist loadgroup`) the tests of a module are marked to run in one
    process, so that its module-scoped endpoints, servers and Labs start once."""
    for item in items:
        item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
