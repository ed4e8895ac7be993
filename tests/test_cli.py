"""`jupyter mlops …` as a user runs it: real subprocesses, real store, JSON on stdout, errors on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def mlops(*args: str, ws: Path, check: bool = True, via: str = "jupyter") -> subprocess.CompletedProcess[str]:
    command = [str(BIN / "jupyter"), "mlops"] if via == "jupyter" else [str(BIN / "mlops")]
    result = subprocess.run(
        [*command, *args, "--workspace", str(ws)],
        capture_output=True,
        text=True,
        env={**os.environ, "MLOPS_USER": "cli-user"},
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def ws(tmp_path) -> Path:
    return tmp_path / "ws"


@pytest.fixture
def model_dir(tmp_path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(os.urandom(2048))
    (folder / "config.json").write_text("{}")
    return folder


def test_models_lifecycle_with_json(ws, model_dir, tmp_path):
    out = mlops(
        "models", "register", "churn", str(model_dir), "--tag", "stage=prod", "--description", "v1", "--json", ws=ws
    )
    record = json.loads(out.stdout)
    assert record["name"] == "churn" and record["version"] == 1 and record["tags"] == {"stage": "prod"}
    assert record["created_by"] == "cli-user" and record["description"] == "v1"
    mlops("models", "register", "churn", str(model_dir), "--tag", "stage=dev", ws=ws, via="mlops")

    listed = json.loads(mlops("models", "list", "stage=prod", "--json", ws=ws).stdout)
    assert isinstance(listed, list) and [(v["name"], v["version"]) for v in listed] == [("churn", 1)]

    mlops("models", "tag", "churn", "2", "validated=yes", ws=ws)
    mlops("models", "alias", "churn", "champion", "2", ws=ws)
    shown = json.loads(mlops("models", "show", "churn", "champion", "--json", ws=ws).stdout)
    assert shown["version"] == 2 and shown["aliases"] == ["champion"] and shown["tags"]["validated"] == "yes"
    model = json.loads(mlops("--json", "models", "show", "churn", ws=ws).stdout)
    assert model["aliases"] == {"champion": 2} and model["latest_version"] == 2

    dest = tmp_path / "dest"
    mlops("models", "download", "churn", "1", str(dest), ws=ws)
    assert (dest / "weights.bin").read_bytes() == (model_dir / "weights.bin").read_bytes()

    refused = mlops("models", "delete", "churn", "2", ws=ws, check=False)
    assert refused.returncode == 1 and "champion" in refused.stderr and "--force" in refused.stderr
    deleted = json.loads(mlops("models", "delete", "churn", "2", "--force", "--json", ws=ws).stdout)
    assert deleted == {"name": "churn", "deleted_versions": [2]}

    text = mlops("models", "list", ws=ws).stdout
    assert text.splitlines()[0].split()[:2] == ["NAME", "VERSION"] and "churn" in text


def test_runs_list_and_show(ws, tmp_path):
    from jupyter_mlops import Workspace

    with Workspace(ws).job(experiment="cli", name="trained", autolog=False) as job:
        pass
    runs = json.loads(mlops("runs", "list", "--experiment", "cli", "--json", ws=ws).stdout)
    assert [r["run_id"] for r in runs] == [job.run_id]
    run = json.loads(mlops("runs", "show", job.run_id, "--json", ws=ws).stdout)
    assert run["name"] == "trained" and run["status"] == "FINISHED"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("models", "show", "nope"), "No model named 'nope'"),
        (("models", "list", "stage=="), "Filter syntax"),
        (("models", "register", "x", "/no/such/path"), "does not exist; nothing was registered"),
        (("models", "tag", "x", "1", "novalue"), "write it as KEY=VALUE"),
        (("models", "tag", "x", "1", "a=b"), "No model named 'x'"),
        (("runs", "list", "--experiment", "nope"), "No experiment named 'nope'"),
    ],
)
def test_errors_go_to_stderr_with_a_non_zero_exit(ws, args, expected):
    result = mlops(*args, ws=ws, check=False)
    assert result.returncode != 0
    assert expected in result.stderr and result.stdout == ""


def test_usage_errors(ws):
    result = mlops("models", "frobnicate", ws=ws, check=False)
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_unreachable_tracking_server_says_which_uri_and_how_to_start_one(tmp_path):
    result = subprocess.run(
        [
            str(BIN / "jupyter"),
            "mlops",
            "models",
            "list",
            "--tracking-uri",
            "http://127.0.0.1:9",
            "--workspace",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "http://127.0.0.1:9" in result.stderr and "mlflow server" in result.stderr


def test_help_is_fast_and_lists_the_groups():
    result = subprocess.run([str(BIN / "jupyter"), "mlops", "--help"], capture_output=True, text=True, check=True)
    assert "models" in result.stdout and "runs" in result.stdout


def _imported_modules(path: Path, package: str) -> set[str]:
    """Every module a file imports (relative imports resolved), and module names it passes around as strings."""
    import ast

    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("jupyter_mlops."):
            names.add(node.value)  # importlib.import_module("jupyter_mlops.cli...") registration
    return names


def test_no_feature_package_imports_the_cli():
    """The CLI is one face: it calls the features, never the other way round (only the magics share its parser)."""
    root = Path(__file__).resolve().parents[1] / "jupyter_mlops"
    offenders = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if relative.parts[0] in {"cli", "server", "magics.py"}:
            continue
        package = ".".join(("jupyter_mlops", *relative.parent.parts))  # what a relative import starts from
        imported = _imported_modules(path, package)
        if any(name == "jupyter_mlops.cli" or name.startswith("jupyter_mlops.cli.") for name in imported):
            offenders.append(str(relative))
    assert offenders == [], f"these modules import jupyter_mlops.cli: {offenders}"


def test_records_render_as_cards_and_aligned_text():
    """A record shown in a notebook is a compact card with nested fields as sub-tables and local times, and
    aligned ``field  value`` lines in a terminal; never a dataclass repr."""
    from datetime import datetime, timezone

    from jupyter_mlops.audit import VersionAudit
    from jupyter_mlops.render import Result, local_time

    deployed = "2026-12-01T10:00:00+00:00"
    audit = VersionAudit(
        model="churn",
        version=3,
        registered_by="ds",
        registered_at=datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc),
        description="retrained",
        run_id="abc123",
        pipeline=None,
        step=None,
        commit=None,
        deployments=[
            {"endpoint": "scoring", "deployment": "blue", "deployed_at": deployed, "until": None, "traffic": []}
        ],
    )
    html = audit._repr_html_()
    local = local_time(datetime.fromisoformat(deployed))
    assert html.startswith('<table class="mlops-card">') and '<table class="mlops-sub">' in html
    assert f"<td>{local}</td>" in html and "{" not in html and "VersionAudit(" not in html
    text = str(audit)
    assert text.splitlines()[0] == "VersionAudit"
    assert any(line.split() == ["model", "churn"] for line in text.splitlines())
    assert f"deployed_at={local}" in text and "{" not in text
    table = Result([audit]).text()
    assert "{" not in table and "1 item(s): endpoint=scoring, deployment=blue" in table
    assert Result(audit)._repr_html_() == html
