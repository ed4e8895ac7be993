"""The tutorials run against a fresh workspace in a temporary folder, never one left next to the notebooks, and
a tutorial whose outputs show a library's warning or progress bar fails: what a new user sees stays clean."""

import os
import re
import tempfile

import pytest

NOISE = re.compile(
    r"\b\w*Warning\b|\bWARNING\b|Downloading artifacts|running over TCP without encryption|valid feature names"
)


def pytest_configure(config) -> None:
    os.environ.setdefault("MLOPS_WORKSPACE", tempfile.mkdtemp(prefix="mlops-notebooks-"))
    os.environ.setdefault("MLOPS_USER", "tester")


def _text(output: dict) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    data = output.get("data", {})
    return str(data.get("text/plain", "")) + str(output.get("traceback", ""))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    outcome = yield
    outputs = getattr(item, "test_outputs", None)
    if outcome.excinfo is not None or not outputs:
        return
    noisy = [line for output in outputs for line in _text(output).splitlines() if NOISE.search(line)]
    if noisy:
        outcome.force_exception(
            AssertionError(f"{item.name} printed warnings or progress bars of a library:\n" + "\n".join(noisy[:10]))
        )
