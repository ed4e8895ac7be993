"""What a tracked job records about where it ran: the Python environment and the git state."""

from __future__ import annotations

import hashlib
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Environment:
    python_version: str
    requirements: str  # "name==version" lines, like ``pip freeze``
    content_hash: str


@dataclass(frozen=True)
class GitState:
    commit: str
    branch: str | None
    remote: str | None
    diff: str  # uncommitted changes to tracked files, empty when clean


def environment() -> Environment:
    """The installed distributions, read from the names of their ``.dist-info`` folders.

    ``pip freeze`` costs about a second and reading every METADATA file a quarter of one; the folder names
    carry the same name and version (wheel spec) in a millisecond or two.
    """
    pins: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for folder in names:
            if folder.endswith(".dist-info"):
                name, _, version = folder[: -len(".dist-info")].partition("-")
                if name and version:
                    pins.setdefault(_normalise(name), f"{_normalise(name)}=={version}")
    requirements = "\n".join(pins[k] for k in sorted(pins)) + "\n"
    python_version = platform.python_version()
    digest = hashlib.sha256(f"python=={python_version}\n{requirements}".encode()).hexdigest()
    return Environment(python_version=python_version, requirements=requirements, content_hash=digest)


def git_state(folder: Path) -> GitState | None:
    """The commit, branch and uncommitted diff of the repository holding ``folder``; None outside git."""
    head = _git(folder, "rev-parse", "HEAD", "--abbrev-ref", "HEAD")
    if head is None:
        return None
    commit, _, branch = head.partition("\n")
    remote = _git(folder, "config", "--get", "remote.origin.url")
    diff = _git(folder, "diff", "HEAD", strip=False) or ""
    return GitState(commit=commit, branch=None if branch in ("HEAD", "") else branch, remote=remote or None, diff=diff)


def _git(folder: Path, *args: str, strip: bool = True) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() if strip else result.stdout


def _normalise(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()
