"""The tutorials run against a fresh workspace in a temporary folder, never one left next to the notebooks."""

import os
import tempfile


def pytest_configure(config) -> None:
    os.environ.setdefault("MLOPS_WORKSPACE", tempfile.mkdtemp(prefix="mlops-notebooks-"))
    os.environ.setdefault("MLOPS_USER", "tester")
