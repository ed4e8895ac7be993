"""Environment specs: ``envs/NAME.yaml`` or a conda ``environment.yml``, read, validated and hashed.

An ``envs/NAME.yaml``::

    name: train                 # optional: the file name without .yaml
    python: "3.11"              # major.minor (quoted: YAML reads 3.10 as the number 3.1)
    pip: [scikit-learn==1.5.2, pandas>=2]
    requirements: requirements.txt   # and/or a requirements file, relative to the spec

A conda ``environment.yml`` gives its ``python=X.Y`` dependency and its ``pip:`` part; any other conda
dependency is an error that names it (the build makes a virtualenv with pip, conda is not required).

The content hash (sha256 of the python version, the sorted requirement lines, and the contents of the
requirements and constraints files they name) is the environment's version: the same content gives the same
version wherever the spec lives.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops.exceptions import InvalidInput

if TYPE_CHECKING:
    from pydantic import BaseModel

_INCLUDE = re.compile(r"^(-r|--requirement)(\s+|=)(?P<path>.+)$")
_CONSTRAINT = re.compile(r"^(-c|--constraint)(\s+|=)(?P<path>.+)$")
_CONDA_PYTHON = re.compile(r"^python\s*(==?|\s)\s*(?P<version>\d+\.\d+)(\.\*|\.\d+)?$")  # X.Y of python=X.Y[.Z|.*]


@dataclass(frozen=True)
class EnvironmentSpec:
    """A validated spec: what the build installs, and the content hash that is its version."""

    name: str
    python: str  # "3.11"
    requirements: tuple[str, ...]  # requirement lines, sorted; nested -r files inlined, -c paths absolute
    source: str | None  # the spec file
    version: str = field(default="")  # sha256 hex of the normalised content

    def to_json(self) -> dict[str, Any]:
        requirements = list(self.requirements)
        return {"name": self.name, "python": self.python, "requirements": requirements, "source": self.source}


def load_spec(path: str | Path) -> EnvironmentSpec:
    """Read and validate a spec file; every error names the file and the key, and says how to fix it."""
    import yaml

    from jupyter_mlops.environments._models import PipSpec

    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise InvalidInput(
            f"No environment spec at {path}: give the path of an envs/NAME.yaml or a conda environment.yml.",
            path=str(path),
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path}: not valid YAML: {exc}", path=str(path)) from exc
    if not isinstance(data, dict):
        raise InvalidInput(
            f"{path}: an environment spec is a mapping with the keys name, python and pip or requirements.",
            path=str(path),
        )
    if "dependencies" in data:
        return _from_conda(path, data)
    spec = _validated(PipSpec, path, data)
    lines = [("pip", line) for line in spec.pip]
    if spec.requirements:
        lines.append(("requirements", f"-r {spec.requirements}"))
    return _build(spec.name or path.stem, spec.python, lines, path)


def _from_conda(path: Path, data: dict[str, Any]) -> EnvironmentSpec:
    from jupyter_mlops.environments._models import CondaSpec, python_version

    spec = _validated(CondaSpec, path, data)
    python: str | None = None
    pip_lines: list[tuple[str, str]] = []
    conda_only: list[str] = []
    for dependency in spec.dependencies:
        if isinstance(dependency, dict):
            unknown = [key for key in dependency if key != "pip"]
            if unknown:
                raise InvalidInput(
                    f"{path}: key 'dependencies': {unknown[0]!r} is not a pip section; only '- pip: [...]' is read.",
                    path=str(path),
                    key="dependencies",
                )
            pip_lines += [("dependencies", line) for line in dependency["pip"]]
            continue
        text = dependency.strip()
        bare = text.split("::")[-1].strip()
        if re.match(r"^python\b(?![-_.\w])", bare):
            match = _CONDA_PYTHON.match(bare)
            if not match:
                raise InvalidInput(
                    f"{path}: key 'dependencies': {text!r} does not pin one Python version: write python=3.11.",
                    path=str(path),
                    key="dependencies",
                )
            try:
                python = python_version(match["version"])
            except ValueError as exc:
                raise InvalidInput(f"{path}: key 'dependencies': {exc}", path=str(path), key="dependencies") from exc
        elif re.fullmatch(r"pip([<>=!~ ].*)?", bare) is None:
            conda_only.append(text)
    if conda_only:
        names = ", ".join(repr(d) for d in conda_only)
        what = "is a conda-only dependency" if len(conda_only) == 1 else "are conda-only dependencies"
        raise InvalidInput(
            f"{path}: key 'dependencies': {names} {what}. "
            "Environments are built as virtualenvs with pip: move them under '- pip:' as pip requirements "
            "(e.g. numpy==1.26) or remove them.",
            path=str(path),
            key="dependencies",
            conda_only=conda_only,
        )
    if python is None:
        raise InvalidInput(
            f"{path}: key 'dependencies': no Python version: add '- python=3.11' (the version to build with).",
            path=str(path),
            key="dependencies",
        )
    return _build(spec.name or path.stem, python, pip_lines, path)


def _validated(model: type[BaseModel], path: Path, data: dict[str, Any]) -> Any:
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        if error["type"] == "extra_forbidden":
            allowed = ", ".join(model.model_fields)
            message = f"unknown key: the keys are {allowed}"
        elif error["type"] == "missing":
            message = "missing: add it" + (' (e.g. python: "3.11")' if key == "python" else "")
        elif error["type"] == "string_pattern_mismatch":
            message = "use letters, digits, '.', '_' and '-' only (it names a folder and a kernel)"
        else:
            message = error["msg"].removeprefix("Value error, ")
        raise InvalidInput(f"{path}: key {key!r}: {message}.", path=str(path), key=key) from None


def _build(name: str, python: str, lines: list[tuple[str, str]], spec_path: Path) -> EnvironmentSpec:
    """``lines`` are (key in the spec, requirement line) pairs."""
    material: list[str] = []  # the contents of the files the lines name, in the hash
    requirements: set[str] = set()
    hashed: set[str] = set()
    for key, line in lines:
        _collect(line, spec_path.parent, spec_path, key, requirements, hashed, material, depth=0)
    ordered = tuple(sorted(requirements))
    text = "\n".join([f"python=={python}", *sorted(hashed), *sorted(material)]) + "\n"
    version = hashlib.sha256(text.encode()).hexdigest()
    return EnvironmentSpec(name, python, ordered, str(spec_path), version)


def _collect(
    line: str,
    base: Path,
    origin: Path,
    key: str,
    requirements: set[str],
    hashed: set[str],
    material: list[str],
    depth: int,
) -> None:
    """Add one requirement line; ``-r FILE`` is inlined and ``-c FILE`` made absolute (their text is hashed)."""
    line = line.split(" #")[0].strip() if not line.lstrip().startswith("#") else ""
    if not line:
        return
    include, constraint = _INCLUDE.match(line), _CONSTRAINT.match(line)
    if not include and not constraint:
        requirements.add(line)
        hashed.add(line)
        return
    target = (base / (include or constraint)["path"].strip()).resolve()
    if depth > 10:
        raise InvalidInput(f"{origin}: -r files nest more than 10 deep: does one include itself?", path=str(origin))
    if not target.is_file():
        where = f"key {key!r}" if depth == 0 else f"line {line!r}"
        raise InvalidInput(
            f"{origin}: {where}: the requirements file {target} does not exist: "
            "paths are relative to the file naming them.",
            path=str(origin),
            key=key,
        )
    content = target.read_text()
    material.append(f"# {target.name}\n{content}")
    if constraint:
        requirements.add(f"-c {target}")
        return
    for nested in content.splitlines():
        _collect(nested, target.parent, target, key, requirements, set(), material, depth + 1)
