"""Turn a spec into a virtualenv with ipykernel, a lock (``pip freeze``) and a kernelspec Jupyter finds.

The venv is built in place (venvs are not relocatable); on any failure the folder is removed, so a folder
holding ``requirements.lock`` is a finished build. The kernelspec is written into the venv
(``<venv>/share/jupyter/kernels/NAME``, as ``ipykernel install --prefix`` does) and installed into the data
folder of the running environment (``<sys.prefix>/share/jupyter/kernels``, else the user's Jupyter data folder
when that is read-only): jupyter_client, hence papermill and JupyterLab of this environment, find it there with
no ``JUPYTER_PATH`` set-up.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from jupyter_mlops.environments.spec import EnvironmentSpec
from jupyter_mlops.exceptions import BuildFailed, InvalidInput

Progress = Callable[[str], None]
LOCK_FILE = "requirements.lock"
PIP_TIMEOUT_S = 1800
_TAIL_LINES = 15


def kernel_name(name: str, version: str) -> str:
    """``mlops-NAME-HASH8``: a valid (lower-case) kernel name that changes with the content."""
    return f"mlops-{name}-{version[:8]}".lower()


def venv_python(folder: Path) -> Path:
    return folder / "bin" / "python"


def find_python(version: str) -> str:
    """The running interpreter when its major.minor is ``version``, else ``pythonX.Y`` from PATH."""
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        return sys.executable
    candidate = shutil.which(f"python{version}")
    if candidate and _version_of(candidate) == version:
        return candidate
    available = sorted(set(_available_pythons()), key=lambda v: tuple(map(int, v.split("."))))
    raise InvalidInput(
        f"The environment asks for Python {version}, which is neither the running interpreter "
        f"({sys.version_info[0]}.{sys.version_info[1]}) nor a python{version} on PATH. Available: "
        f"{', '.join(available) or 'none'}. Install Python {version} (e.g. `uv python install {version}` or "
        "your system's package) or change `python:` in the spec.",
        python=version,
        available=available,
    )


def build_venv(spec: EnvironmentSpec, folder: Path, kernel: str, progress: Progress | None = None) -> str:
    """Create the venv at ``folder``, install the requirements and ipykernel, write the lock and kernelspec.

    Returns the lock text. On failure the folder is gone and ``BuildFailed`` says why.
    """
    say = progress or (lambda _message: None)
    python = find_python(spec.python)
    if folder.exists():  # a build that was killed half-way
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        say(f"Creating a Python {spec.python} virtualenv in {folder}")
        _run([python, "-m", "venv", str(folder)], "creating the virtualenv", spec, timeout=600)
        requirements = folder / "mlops-requirements.txt"
        requirements.write_text("".join(f"{line}\n" for line in spec.requirements))
        say(f"Installing {len(spec.requirements)} requirement(s) and ipykernel with pip")
        cwd = Path(spec.source).parent if spec.source and Path(spec.source).parent.is_dir() else folder
        command = [str(venv_python(folder)), "-m", "pip", "install", "-r", str(requirements), "ipykernel"]
        _run(command, "installing the requirements", spec, timeout=PIP_TIMEOUT_S, cwd=cwd)
        say("Recording the lock (pip freeze)")
        lock = _run([str(venv_python(folder)), "-m", "pip", "freeze"], "recording the lock", spec, timeout=120)
        write_kernelspec(folder, kernel, spec)
        (folder / LOCK_FILE).write_text(lock)  # last: its presence marks a finished build
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return lock


def write_kernelspec(folder: Path, kernel: str, spec: EnvironmentSpec) -> Path:
    """``<venv>/share/jupyter/kernels/KERNEL/kernel.json`` starting ipykernel with the venv's python."""
    target = folder / "share" / "jupyter" / "kernels" / kernel
    target.mkdir(parents=True, exist_ok=True)
    kernel_json = {
        "argv": [str(venv_python(folder)), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"{spec.name} (mlops {spec.version[:8]}, Python {spec.python})",
        "language": "python",
        "metadata": {"debugger": True, "mlops": {"environment": spec.name, "version": spec.version}},
    }
    (target / "kernel.json").write_text(json.dumps(kernel_json, indent=1))
    return target


def install_kernelspec(folder: Path, kernel: str) -> Path:
    """Copy the venv's kernelspec where jupyter_client of the running environment looks; returns where."""
    from jupyter_client.kernelspec import KernelSpecManager

    source = folder / "share" / "jupyter" / "kernels" / kernel
    manager = KernelSpecManager()
    try:
        return Path(manager.install_kernel_spec(str(source), kernel, prefix=sys.prefix))
    except OSError:  # a read-only interpreter prefix: the user's Jupyter data folder
        return Path(manager.install_kernel_spec(str(source), kernel, user=True))


def installed_kernelspec(kernel: str, folder: Path) -> bool:
    """Whether jupyter_client finds ``kernel`` and it starts the python of the venv at ``folder``."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(kernel)
    except NoSuchKernel:
        return False
    return bool(spec.argv) and spec.argv[0] == str(venv_python(folder))


def remove_kernelspec(kernel: str) -> None:
    """Remove ``kernel`` from every Jupyter data folder that holds it."""
    from jupyter_client.kernelspec import KernelSpecManager

    manager = KernelSpecManager()
    while kernel in manager.find_kernel_specs():
        manager.remove_kernel_spec(kernel)


def _run(command: list[str], doing: str, spec: EnvironmentSpec, *, timeout: float, cwd: Path | None = None) -> str:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    env.pop("PYTHONPATH", None)  # the venv must not see the packages of the running environment
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BuildFailed(
            f"Building environment {spec.name!r} failed: {doing} took longer than {timeout:.0f}s.",
            name=spec.name,
            version=spec.version,
            output="",
        ) from exc
    if result.returncode != 0:
        lines = [line for line in (result.stdout + "\n" + result.stderr).splitlines() if line.strip()]
        tail = "\n".join(lines[-_TAIL_LINES:])
        raise BuildFailed(
            f"Building environment {spec.name!r} failed while {doing} (exit code {result.returncode}). "
            f"Fix the spec ({spec.source}) and build again. Last lines:\n{tail}",
            name=spec.name,
            version=spec.version,
            output=tail,
        )
    return result.stdout


def _version_of(python: str) -> str | None:
    try:
        result = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _available_pythons() -> list[str]:
    """The major.minor of the running interpreter and of every ``python3.N`` on PATH that runs."""
    found = [f"{sys.version_info[0]}.{sys.version_info[1]}"]
    names: set[str] = set()
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        try:
            names.update(n for n in os.listdir(folder or ".") if re.fullmatch(r"python3\.\d+", n))
        except OSError:
            continue
    for name in sorted(names):
        path = shutil.which(name)
        version = _version_of(path) if path else None
        if version:
            found.append(version)
    return found
