"""``jupyter mlops ci init``: a thin workflow file per CI system, whose one real step is ``jupyter mlops ci run``.

Everything the job does lives in that command, so the file stays a few lines that nobody has to maintain: check
out, install, run. The stores come from CI secrets (``MLOPS_TRACKING_URI``, ``MLOPS_METADATA_URI``). Besides a push
to the branch, each file can be started for one model version (``NAME:VERSION``): a manual run with that input, or
on GitHub a ``repository_dispatch`` of type ``mlops-model-registered`` (a webhook subscription can send it).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from jupyter_mlops.exceptions import Conflict, InvalidInput
from jupyter_mlops.records import Record

PROVIDERS = {  # where each system reads its workflow
    "github": ".github/workflows/mlops.yml",
    "gitlab": ".gitlab-ci.yml",
    "azure-pipelines": "azure-pipelines.yml",
}
SUMMARY_FILE = "mlops-summary.md"
PYTHON = "3.11"

GITHUB = """\
# Gates and releases the model on every push: `jupyter mlops ci run` runs the pipeline against the team's stores
# (the secrets MLOPS_TRACKING_URI and MLOPS_METADATA_URI), compares the candidate with the {alias} and promotes it
# or asks for an approval. Start it for one version with the `model` input or a repository_dispatch event of type
# mlops-model-registered carrying {{"model": "NAME:VERSION"}}. Written by `jupyter mlops ci init`.
name: mlops
on:
  push:
    branches: [{branch}]
  workflow_dispatch:
    inputs:
      model:
        description: A model version to gate and release (NAME:VERSION); empty runs the pipeline
        required: false
        type: string
  repository_dispatch:
    types: [mlops-model-registered]
jobs:
  release:
    runs-on: ubuntu-latest
    timeout-minutes: 60
    env:
      MLOPS_TRACKING_URI: ${{{{ secrets.MLOPS_TRACKING_URI }}}}
      MLOPS_METADATA_URI: ${{{{ secrets.MLOPS_METADATA_URI }}}}
      MLOPS_USER: ${{{{ github.actor }}}}
      MLOPS_MODEL: ${{{{ inputs.model || github.event.client_payload.model }}}}
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "{python}"
      - name: Install
        run: {install}
      - name: Gate and release
        run: |
          if [ -n "$MLOPS_MODEL" ]; then
            jupyter mlops ci run --model "$MLOPS_MODEL" --alias {alias}
          else
            jupyter mlops ci run {pipeline} --alias {alias}
          fi
"""

GITLAB = """\
# Gates and releases the model on every push to {branch}: `jupyter mlops ci run` runs the pipeline against the
# team's stores (CI/CD variables MLOPS_TRACKING_URI and MLOPS_METADATA_URI, masked), compares the candidate with
# the {alias} and promotes it or asks for an approval. Run it for one version with the variable MLOPS_MODEL set
# to NAME:VERSION (a manual pipeline or a trigger). Written by `jupyter mlops ci init`.
stages: [release]

mlops-release:
  stage: release
  image: python:{python}
  timeout: 60 minutes
  variables:
    MLOPS_USER: $GITLAB_USER_LOGIN
  rules:
    - if: $MLOPS_MODEL
    - if: $CI_COMMIT_BRANCH == "{branch}"
  script:
    - {install}
    - >
      if [ -n "$MLOPS_MODEL" ]; then
      jupyter mlops ci run --model "$MLOPS_MODEL" --alias {alias} --summary {summary};
      else jupyter mlops ci run {pipeline} --alias {alias} --summary {summary}; fi
  artifacts:
    when: always
    expose_as: mlops summary
    paths: [{summary}]
"""

AZURE = """\
# Gates and releases the model on every push to {branch}: `jupyter mlops ci run` runs the pipeline against the
# team's stores (secret variables MLOPS_TRACKING_URI and MLOPS_METADATA_URI), compares the candidate with the
# {alias} and promotes it or asks for an approval; the comparison shows on the run's summary page. Queue it with
# the `model` parameter (NAME:VERSION) for one version. Written by `jupyter mlops ci init`.
trigger:
  branches:
    include: [{branch}]
pr: none
parameters:
  - name: model
    displayName: A model version to gate and release (NAME:VERSION); "none" runs the pipeline
    type: string
    default: none
pool:
  vmImage: ubuntu-latest
steps:
  - task: UsePythonVersion@0
    inputs:
      versionSpec: "{python}"
  - script: {install}
    displayName: Install
  - script: |
      if [ "${{{{ parameters.model }}}}" != "none" ]; then
        jupyter mlops ci run --model "${{{{ parameters.model }}}}" --alias {alias} --summary {summary}
      else
        jupyter mlops ci run {pipeline} --alias {alias} --summary {summary}
      fi
      status=$?
      echo "##vso[task.uploadsummary]$(System.DefaultWorkingDirectory)/{summary}"
      exit $status
    displayName: Gate and release
    timeoutInMinutes: "60"  # the schema of Azure Pipelines types every value as a string
    env:
      MLOPS_TRACKING_URI: $(MLOPS_TRACKING_URI)
      MLOPS_METADATA_URI: $(MLOPS_METADATA_URI)
      MLOPS_USER: $(Build.RequestedFor)
"""

TEMPLATES = {"github": GITHUB, "gitlab": GITLAB, "azure-pipelines": AZURE}


@dataclass(frozen=True)
class Workflow(Record):
    """A workflow file written by ``ci init``."""

    provider: str
    path: str
    pipeline: str


def init(
    provider: str,
    pipeline: str | Path,
    *,
    root: str | Path | None = None,
    branch: str = "main",
    alias: str = "champion",
    force: bool = False,
) -> Workflow:
    """Write the workflow file of ``provider`` into the repository at ``root`` (default: the one holding the
    current folder), running ``pipeline`` (a path; stored relative to the repository)."""
    if provider not in TEMPLATES:
        raise InvalidInput(f"Unknown CI provider {provider!r}: choose one of {', '.join(TEMPLATES)}.")
    repo = Path(root).resolve() if root is not None else _repository(Path.cwd())
    spec = Path(pipeline).expanduser()
    spec = (spec if spec.is_absolute() else Path.cwd() / spec).resolve()
    if not spec.is_file():
        raise InvalidInput(f"No pipeline spec at {spec}: pass the pipeline.yaml the job should run.", path=str(spec))
    try:
        relative = spec.relative_to(repo).as_posix()
    except ValueError:
        raise InvalidInput(
            f"The pipeline {spec} is outside the repository {repo}: CI checks out only the repository."
        ) from None
    from jupyter_mlops.pipelines import spec as pipeline_spec

    pipeline_spec.load(spec)  # a spec that does not load fails here, not in CI
    target = repo / PROVIDERS[provider]
    if target.exists() and not force:
        raise Conflict(f"{target} exists: pass --force to replace it.", path=str(target))
    has_requirements = (repo / "requirements.txt").is_file()
    install = "pip install -r requirements.txt" if has_requirements else "pip install jupyter-mlops"
    text = TEMPLATES[provider].format(
        branch=branch,
        alias=alias,
        pipeline=shlex.quote(relative),
        install=install,
        python=PYTHON,
        summary=SUMMARY_FILE,
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return Workflow(provider=provider, path=str(target), pipeline=relative)


def _repository(folder: Path) -> Path:
    """The top of the git repository holding ``folder``, else ``folder``."""
    import subprocess

    try:
        top = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "--show-toplevel"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return folder.resolve()
    return Path(top.stdout.strip()).resolve() if top.returncode == 0 else folder.resolve()


__all__ = ["PROVIDERS", "TEMPLATES", "Workflow", "init"]
