"""Step reuse: a step's cache key, content hashes of its files, and finding a previous run with the same key.

The key covers everything that decides what a step produces: the notebook's code, its parameters, the content
of its inputs and the environment it runs in. A previous successful run with the same key holds outputs that
the step would produce again, so they are restored instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops.pipelines.tags import KEY_TAG, OUTPUT_KIND_TAG, OUTPUT_TAG, OUTPUTS_ARTIFACT, STATUS_TAG, STEP_TAG

if TYPE_CHECKING:
    from mlflow import MlflowClient


def content_hash(path: Path) -> str:
    """sha256 of a file, or of a folder's relative paths and file contents (order-independent of listing)."""
    digest = hashlib.sha256()
    if path.is_file():
        _file_into(digest, path)
        return digest.hexdigest()
    if not path.is_dir():
        return ""
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        _file_into(digest, file)
    return digest.hexdigest()


def _file_into(digest: Any, path: Path) -> None:
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)


def step_key(
    *,
    notebook_hash: str,
    kernel: str,
    parameters: dict[str, Any],
    inputs: dict[str, str],
    outputs: list[str],
    env_hash: str,
    sweep: dict[str, Any] | None = None,
) -> str:
    """The cache key: input and output *paths* are left out on purpose, only what the files contain counts."""
    payload = {
        "notebook": notebook_hash,
        "kernel": kernel,
        "parameters": parameters,
        "inputs": inputs,
        "outputs": sorted(outputs),
        "env": env_hash,
    }
    if sweep is not None:  # only then: the keys of steps without a sweep stay what they were
        payload["sweep"] = sweep
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def find(client: MlflowClient, experiment_id: str, key: str) -> Any | None:
    """The newest successful execution of a step with this key, or None."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{KEY_TAG}` = '{key}' AND tags.`{STATUS_TAG}` = 'succeeded'",
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    return runs[0] if runs else None


def latest(client: MlflowClient, experiment_id: str, step: str) -> Any | None:
    """The newest successful execution of ``step`` whatever its key (``--only``/``--from`` take inputs from it)."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{STEP_TAG}` = '{step}' AND tags.`{STATUS_TAG}` = 'succeeded'",
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    return runs[0] if runs else None


def restore(client: MlflowClient, run: Any, name: str, dest: Path) -> None:
    """Put output ``name`` of ``run`` at ``dest``, unless a file with the same content is already there."""
    expected = run.data.tags.get(OUTPUT_TAG + name)
    if expected and dest.exists() and content_hash(dest) == expected:
        return
    with tempfile.TemporaryDirectory(prefix="mlops-restore-") as tmp, _no_progress_bar():
        local = Path(client.download_artifacts(run.info.run_id, f"{OUTPUTS_ARTIFACT}/{name}", tmp))
        entries = list(local.iterdir()) if local.is_dir() else [local]
        source = entries[0] if len(entries) == 1 and run.data.tags.get(f"{OUTPUT_KIND_TAG}{name}") == "file" else local
        _replace(source, dest)


@contextlib.contextmanager
def _no_progress_bar() -> Iterator[None]:
    """MLflow draws a download progress bar on stderr; the runner reports progress itself (callers hold a lock)."""
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    previous = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def _replace(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)
    elif dest.exists():
        dest.unlink()
    if source.is_dir():
        shutil.copytree(source, dest)
    else:
        shutil.copy2(source, dest)
    os.utime(dest)
