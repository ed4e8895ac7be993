"""CI/CD: the workflow files `ci init` writes validate against each system's published schema, and `ci run` does a
release's whole loop for real, in a git repository, against an mlflow server on PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from tests.test_pipeline_gates import SPEC
from tests.test_pipelines import _notebook

BIN = Path(sys.executable).parent
TRAIN = "from pathlib import Path\nPath(model).mkdir(exist_ok=True)\n(Path(model) / 'quality.txt').write_text(str(q))"
EVALUATE = (
    "import json\nfrom pathlib import Path\n"
    "json.dump({'accuracy': float((Path(model) / 'quality.txt').read_text())}, open(metrics, 'w'))"
)


def _schema(name: str) -> dict:
    """A schema check-jsonschema vendors (GitHub's from schemastore, GitLab's and Azure's from their projects)."""
    return json.loads(resources.files("check_jsonschema.builtin_schemas.vendor").joinpath(name).read_text())


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "a"}
    env["GIT_COMMITTER_EMAIL"] = "a@x"
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True)
    return done.stdout.strip()


def _repo(tmp_path: Path, model: str) -> Path:
    """A git repository holding a gated pipeline whose model's quality is the spec's parameter ``q``."""
    repo = tmp_path / "repo"
    folder = repo / "pipeline"
    _notebook(folder / "train.ipynb", "q = 0.0\nmodel = 'model'", TRAIN)
    _notebook(folder / "evaluate.ipynb", "model = 'model'\nmetrics = 'metrics.json'", EVALUATE)
    _notebook(folder / "ship.ipynb", "metrics = ''\nout = ''", "open(out, 'w').write('shipped')")
    (folder / "pipeline.yaml").write_text(SPEC.replace("gated-model", model).replace("name: gated", f"name: {model}"))
    (repo / ".gitignore").write_text("pipeline/model/\npipeline/*.json\npipeline/*.txt\nws/\n")
    _git(repo, "init", "-q", "-b", "main")
    return repo


def _commit(repo: Path, quality: float) -> str:
    spec = repo / "pipeline" / "pipeline.yaml"
    text = spec.read_text()
    spec.write_text(
        text.replace(text[text.index("parameters: {q:") : text.index("}\n") + 1], f"parameters: {{q: {quality}}}")
    )
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", f"quality {quality}")
    return _git(repo, "rev-parse", "HEAD")


@pytest.mark.parametrize(
    ("provider", "path", "schema"),
    [
        ("github", ".github/workflows/mlops.yml", "github-workflows.json"),
        ("gitlab", ".gitlab-ci.yml", "gitlab-ci.json"),
        ("azure-pipelines", "azure-pipelines.yml", "azure-pipelines.json"),
    ],
)
def test_ci_init_writes_a_workflow_that_validates_against_the_published_schema(tmp_path, provider, path, schema):
    repo = _repo(tmp_path, "m")
    cli = [str(BIN / "jupyter"), "mlops", "ci", "init", "--workspace", str(tmp_path / "ws")]
    done = subprocess.run(
        [*cli, "--provider", provider, "--pipeline", "pipeline.yaml", "--json"],
        cwd=repo / "pipeline",  # from a folder inside the repository: the file goes to its top
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    written = json.loads(done.stdout)
    assert written["path"] == str(repo / path) and written["pipeline"] == "pipeline/pipeline.yaml"
    document = YAML(typ="safe").load((repo / path).read_text())  # YAML 1.2, as CI systems read it
    jsonschema.validate(document, _schema(schema))
    text = (repo / path).read_text()
    assert "jupyter mlops ci run pipeline/pipeline.yaml --alias champion" in text
    assert "MLOPS_TRACKING_URI" in text and "MLOPS_METADATA_URI" in text and "--model" in text
    if provider == "github":
        assert set(document["on"]) == {"push", "workflow_dispatch", "repository_dispatch"}
        assert document["jobs"]["release"]["env"]["MLOPS_TRACKING_URI"] == "${{ secrets.MLOPS_TRACKING_URI }}"
    elif provider == "gitlab":
        assert document["mlops-release"]["artifacts"]["paths"] == ["mlops-summary.md"]
    else:
        assert "##vso[task.uploadsummary]" in text

    # An existing file is kept unless --force; a spec outside the repository or a misspelt provider is refused
    again = subprocess.run(
        [*cli, "--provider", provider, "--pipeline", "pipeline/pipeline.yaml"], cwd=repo, capture_output=True, text=True
    )
    assert again.returncode != 0 and "exists: pass --force to replace it" in again.stderr
    (tmp_path / "elsewhere.yaml").write_text(SPEC)
    outside = subprocess.run(
        [*cli, "--provider", provider, "--pipeline", str(tmp_path / "elsewhere.yaml"), "--force"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert outside.returncode != 0 and "is outside the repository" in outside.stderr
    wrong = subprocess.run([*cli, "--provider", "jenkins", "--pipeline", "x"], cwd=repo, capture_output=True, text=True)
    assert wrong.returncode == 2 and "invalid choice: 'jenkins'" in wrong.stderr


@pytest.mark.server
def test_ci_run_registers_asks_approval_promotes_after_review_and_gates_a_worse_commit(shared_store, tmp_path):
    tracking_uri, metadata_uri = shared_store
    model = f"ci-{uuid.uuid4().hex[:8]}"
    repo = _repo(tmp_path, model)
    summary = tmp_path / "summary.md"
    env = {
        **os.environ,
        "MLOPS_TRACKING_URI": tracking_uri,
        "MLOPS_METADATA_URI": metadata_uri,
        "MLOPS_WORKSPACE": str(tmp_path / "ws"),
        "MLOPS_USER": "ci",
        "GITHUB_STEP_SUMMARY": str(summary),
    }

    def mlops(*args: str, user: str = "ci") -> subprocess.CompletedProcess[str]:
        command = [str(BIN / "jupyter"), "mlops", *args]
        return subprocess.run(command, cwd=repo, capture_output=True, text=True, env={**env, "MLOPS_USER": user})

    def ci_run() -> tuple[int, dict]:
        done = mlops("ci", "run", "pipeline/pipeline.yaml", "--json")
        assert done.stdout, done.stderr
        return done.returncode, json.loads(done.stdout)

    # The first commit: no champion yet, the candidate passes its absolute threshold and awaits approval
    first = _commit(repo, 0.8)
    code, outcome = ci_run()
    assert code == 0 and outcome["outcome"] == "approval_requested", outcome
    assert outcome["candidate"] == f"{model}:1" and outcome["baseline"] is None and outcome["commit"] == first
    assert f"approval requested (jupyter mlops models approve {model} 1" in outcome["message"]
    assert summary.read_text().startswith(f"## ✅ jupyter-mlops: {model}:1 passed")

    # A reviewer approves and promotes it, as they would from the Lab or the CLI
    assert mlops("models", "approve", model, "1", "--comment", "first model", user="reviewer").returncode == 0
    promoted = mlops("models", "promote", model, "1", "--alias", "champion", "--reason", "reviewed", user="reviewer")
    assert promoted.returncode == 0, promoted.stderr

    # A second commit improves the model: it passes against the champion and asks for approval
    _commit(repo, 0.9)
    code, outcome = ci_run()
    assert code == 0 and outcome["outcome"] == "approval_requested" and outcome["baseline"] == f"{model}:1"
    accuracy = outcome["metrics"]["accuracy"]
    assert (accuracy["baseline"], accuracy["candidate"], accuracy["passed"]) == (0.8, 0.9, True)
    assert accuracy["change"] == pytest.approx(0.1)

    # A third makes it worse: gated, exit code 1, the summary's table says which metric missed by how much
    _commit(repo, 0.7)
    code, outcome = ci_run()
    assert code == 1 and outcome["outcome"] == "gated" and outcome["passed"] is False
    assert outcome["candidate"] == f"{model}:3" and "minimum absolute change check failed" in outcome["failures"][0]
    page = summary.read_text()
    assert f"## ❌ jupyter-mlops: {model}:3 gate failed against {model}:1 (champion)" in page
    assert "| accuracy | 0.8 | 0.7 | -0.1 |" in page and "| FAIL |" in page

    # The alias never moved to a version that did not pass; its history says who moved it and why
    history = json.loads(mlops("models", "history", model, "--alias", "champion", "--json").stdout)
    assert [(move["version"], move["by"], move["via"]) for move in history] == [(1, "reviewer", "promote")]
