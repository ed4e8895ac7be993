"""The workspace's folders on disk: the only module that joins path segments under the workspace root.

    ROOT/
      mlflow.db  mlops.db          the tracking store and the metadata store (SQLite, when local)
      artifacts/EXPERIMENT/        run artifacts and model files
      serving/ENDPOINT/            what the workers of an endpoint load, their metrics and change signal
      serving/.runtime/            the serving code copied for deployments in their own environment
      collected/ENDPOINT/DEPLOYMENT/  the inputs and outputs an endpoint kept for monitoring (JSON lines)
      labels/ENDPOINT.jsonl        ground truth sent for an endpoint's requests
      monitors/MONITOR/            a monitor's reference data
      datasets/NAME/VERSION/       the files of a dataset version
      batch/NAME/KEY/              a batch job's output (the same input resumes in the same folder)
      sweeps/RUN_ID/               what the trials of a sweep share
      envs/                        built environments (venvs with their kernels)
      logs/endpoints/              router logs (ENDPOINT.log) and per-deployment logs (ENDPOINT/DEPLOYMENT.log)

Every segment that comes from a user (a name) is checked so that no path can leave its folder.
"""

from __future__ import annotations

from pathlib import Path

from jupyter_mlops.exceptions import InvalidInput


def _segment(value: object, what: str) -> str:
    text = str(value)
    if not text or text in (".", "..") or "/" in text or "\\" in text or "\x00" in text:
        raise InvalidInput(f"{what} {text!r} cannot name a folder: it must not be empty, '.', '..' or hold '/'.")
    return text


class Layout:
    """The paths of one workspace root."""

    def __init__(self, root: Path) -> None:
        self.root = root

    # -- stores -------------------------------------------------------------------------------------------------
    @property
    def tracking_db(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def metadata_db(self) -> Path:
        return self.root / "mlops.db"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    def marker(self, name: str) -> Path:
        """A lock or ready-marker file of the workspace itself (``.mlflow-store.lock``, ...)."""
        return self.root / _segment(name, "marker")

    # -- endpoints ------------------------------------------------------------------------------------------------
    def serving(self, endpoint: str) -> Path:
        return self.root / "serving" / _segment(endpoint, "endpoint")

    def serving_runtime(self, stamp: str) -> Path:
        return self.root / "serving" / ".runtime" / _segment(stamp, "runtime")

    def served_model(self, endpoint: str, folder: str) -> Path:
        """A model (or image build context) prepared for one deployment of ``endpoint``."""
        return self.serving(endpoint) / _segment(folder, "deployment folder")

    def config_signal(self, endpoint: str) -> Path:
        return self.serving(endpoint) / "config-changed"

    def metrics(self, endpoint: str) -> Path:
        return self.serving(endpoint) / "metrics"

    def router_log(self, endpoint: str) -> Path:
        return self.root / "logs" / "endpoints" / f"{_segment(endpoint, 'endpoint')}.log"

    def deployment_log(self, endpoint: str, deployment: str) -> Path:
        return (
            self.root
            / "logs"
            / "endpoints"
            / _segment(endpoint, "endpoint")
            / f"{_segment(deployment, 'deployment')}.log"
        )

    def collected(self, endpoint: str, deployment: str | None = None) -> Path:
        folder = self.root / "collected" / _segment(endpoint, "endpoint")
        return folder if deployment is None else folder / _segment(deployment, "deployment")

    def labels(self, endpoint: str | None = None) -> Path:
        folder = self.root / "labels"
        return folder if endpoint is None else folder / f"{_segment(endpoint, 'endpoint')}.jsonl"

    # -- monitoring, data, batch, pipelines -------------------------------------------------------------------------
    def monitor(self, name: str) -> Path:
        return self.root / "monitors" / _segment(name, "monitor")

    def dataset(self, name: str, version: int | str) -> Path:
        return self.root / "datasets" / _segment(name, "dataset") / _segment(version, "dataset version")

    def batch_output(self, name: str, key: str) -> Path:
        return self.root / "batch" / _segment(name, "batch endpoint") / _segment(key, "batch key")

    def sweep(self, run_id: str) -> Path:
        return self.root / "sweeps" / _segment(run_id, "run id")

    @property
    def envs(self) -> Path:
        return self.root / "envs"


__all__ = ["Layout"]
