"""The code a tracked run keeps: the executed notebook of a pipeline step (``notebook/``), else the copy of the
notebook a job started from and the cell's source (``code/``), so that a person can open what ran."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from jupyter_mlops import _mlflow

if TYPE_CHECKING:
    from jupyter_mlops.workspace import Workspace

FOLDERS = ("notebook", "code")  # the executed notebook first: it has the outputs


@dataclass(frozen=True)
class RunCode:
    run_id: str
    notebook_artifact: str | None  # e.g. notebook/train.ipynb
    notebook_file: Path | None  # that artifact as a local file, when the artifact store is a local folder
    notebook: dict[str, Any] | None  # its nbformat JSON
    cell: str | None  # the source of a %%mlops_job cell


def run_code(ws: Workspace, run_id: str) -> RunCode:
    """What ``run_id`` ran; every field None when it kept no code."""
    client = ws.client
    with _mlflow.translated_errors(f"run {run_id!r}"):
        artifact_uri = client.get_run(run_id).info.artifact_uri
        listed = {folder: [a.path for a in client.list_artifacts(run_id, folder)] for folder in FOLDERS}
        notebook_artifact = next((p for f in FOLDERS for p in listed[f] if p.endswith(".ipynb")), None)
        cell_artifact = next((p for p in listed["code"] if p == "code/cell.py"), None)
        with tempfile.TemporaryDirectory(prefix="mlops-code-") as tmp:
            notebook = cell = None
            if notebook_artifact:
                notebook = json.loads(Path(client.download_artifacts(run_id, notebook_artifact, tmp)).read_text())
            if cell_artifact:
                cell = Path(client.download_artifacts(run_id, cell_artifact, tmp)).read_text()
    local = _local_file(artifact_uri, notebook_artifact)
    return RunCode(run_id, notebook_artifact, local, notebook, cell)


def _local_file(artifact_uri: str, artifact: str | None) -> Path | None:
    parsed = urlparse(artifact_uri)
    if artifact is None or parsed.scheme not in ("", "file"):
        return None
    path = Path(unquote(parsed.path)) / artifact
    return path if path.is_file() else None
