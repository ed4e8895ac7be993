"""Environments: specs and their content hash, real venv builds with real pip, kernelspecs a real kernel runs on.

One real build (a venv with `six` and ipykernel) serves the whole module: it is built by two `jupyter mlops env
build` processes at once, and removed (venv, kernelspec, record) at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from jupyter_mlops import InvalidInput, NotFound, Workspace, use_workspace
from jupyter_mlops.environments import BuildFailed, Environments, load_spec

BIN = Path(sys.executable).parent
PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"


def mlops(*args: str, ws: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(BIN / "jupyter"), "mlops", *args, "--workspace", str(ws)], capture_output=True, text=True
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def write_spec(folder: Path, name: str, body: str) -> Path:
    path = folder / "envs" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(workspace folder, spec path, record as JSON, build timings): one venv with six, built by two processes."""
    root = tmp_path_factory.mktemp("envs")
    ws = root / "ws"
    spec = write_spec(root, "tiny", f'name: tiny\npython: "{PYTHON}"\npip: [six]\n')
    registered = json.loads(mlops("env", "register", str(spec), "--json", ws=ws).stdout)
    assert registered["status"] == "registered"
    # Given two processes building the same environment at the same time
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            [str(BIN / "jupyter"), "mlops", "env", "build", "tiny", "--json", "--workspace", str(ws)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=900) for p in procs]
    elapsed = time.monotonic() - started
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    records = [json.loads(out) for out, _ in outputs]
    yield {"ws": ws, "spec": spec, "record": records[0], "records": records, "outputs": outputs, "seconds": elapsed}
    with contextlib.suppress(NotFound):  # test_remove_... removes it: this keeps the kernelspec out otherwise
        Environments(Workspace(ws)).remove("tiny")


def test_two_processes_build_one_environment_once(built):
    # Then both get the same ready environment, and only one of them created it
    first, second = built["records"]
    assert first == second
    assert first["status"] == "ready" and first["error"] is None and first["built_at"]
    assert sum("Creating a Python" in err for _, err in built["outputs"]) == 1
    venv = Path(first["venv_path"])
    assert venv == built["ws"].resolve() / "envs" / f"tiny-{first['version'][:12]}"
    assert (venv / "bin" / "python").exists() and (venv / "requirements.lock").read_text() == first["lock"]
    assert first["kernel_name"] == f"mlops-tiny-{first['version'][:8]}"
    assert "six==" in first["lock"] and "ipykernel==" in first["lock"]
    print(f"\nreal build (two concurrent processes, one venv with six + ipykernel): {built['seconds']:.1f}s")


def test_kernelspec_is_found_and_a_kernel_runs_in_the_venv(built, tmp_path):
    import nbformat
    import papermill
    from jupyter_client.kernelspec import KernelSpecManager

    kernel = built["record"]["kernel_name"]
    assert kernel in KernelSpecManager().find_kernel_specs()
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell("import sys, six\nprint(sys.prefix, six.__version__)"))
    source, executed = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(notebook, source)
    papermill.execute_notebook(str(source), str(executed), kernel_name=kernel, progress_bar=False)
    output = nbformat.read(executed, as_version=4).cells[0].outputs[0]["text"]
    prefix, six_version = output.split()
    assert Path(prefix) == Path(built["record"]["venv_path"])
    assert f"six=={six_version}" in built["record"]["lock"]


def test_same_hash_reuses_the_environment_and_creates_nothing(built):
    ws = Workspace(built["ws"])
    before = {p: p.stat().st_mtime_ns for p in (built["ws"] / "envs").rglob("*")}
    started = time.monotonic()
    record = Environments(ws).build("tiny")
    elapsed = time.monotonic() - started
    print(f"\nreused build: {elapsed:.2f}s")
    assert elapsed < 5, elapsed  # a record read and a kernelspec look-up
    kernel = Environments(ws).kernel_for(built["spec"])  # a spec path: registered again (a no-op), then reused
    assert record.to_dict() == built["record"] and kernel == record.kernel_name
    after = {p: p.stat().st_mtime_ns for p in (built["ws"] / "envs").rglob("*")}
    assert after == before
    assert [(e.name, e.version) for e in Environments(ws).list()] == [("tiny", record.version)]


def test_kernelspec_is_installed_again_when_removed(built):
    from jupyter_client.kernelspec import KernelSpecManager

    from jupyter_mlops.environments.build import remove_kernelspec

    kernel = built["record"]["kernel_name"]
    remove_kernelspec(kernel)
    assert kernel not in KernelSpecManager().find_kernel_specs()
    # two pipeline steps asking at once (threads of one process) both get it, installed once under the lock
    envs = Environments(Workspace(built["ws"]))
    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(envs.kernel_for, ["tiny", "tiny"])) == [kernel, kernel]
    assert kernel in KernelSpecManager().find_kernel_specs()


def test_module_verbs_use_the_default_workspace(built):
    import jupyter_mlops as mlops

    use_workspace(built["ws"])
    assert [e.name for e in mlops.environments.list()] == ["tiny"]
    assert mlops.environments.show("tiny", built["record"]["version"][:6]).status == "ready"
    assert mlops.environments.kernel_for("tiny") == built["record"]["kernel_name"]


def test_cli_show_list_and_export(built, tmp_path):
    ws = built["ws"]
    listed = json.loads(mlops("env", "list", "--json", ws=ws).stdout)
    assert [(e["name"], e["status"]) for e in listed] == [("tiny", "ready")]
    assert "SHORT_VERSION" in mlops("env", "list", ws=ws).stdout
    shown = json.loads(
        mlops("env", "show", "tiny", "--version", built["record"]["version"][:8], "--json", ws=ws).stdout
    )
    assert shown == built["record"]
    missing = mlops("env", "show", "nope", ws=ws, check=False)
    assert missing.returncode == 1 and "tiny" in missing.stderr and "env register" in missing.stderr

    # export: a Dockerfile on python:X.Y-slim that installs the lock, and the lock itself
    out = json.loads(mlops("env", "export", "tiny", "--dockerfile", str(tmp_path / "docker"), "--json", ws=ws).stdout)
    dockerfile = Path(out["dockerfile"]).read_text()
    assert out["version"] == built["record"]["version"]
    assert f"FROM python:{PYTHON}-slim" in dockerfile
    assert "COPY requirements.lock" in dockerfile and "pip install -r /app/requirements.lock" in dockerfile
    assert "cert" not in dockerfile.lower() and "trusted-host" not in dockerfile
    assert Path(out["lock"]).read_text() == built["record"]["lock"]


def test_remove_forgets_the_venv_the_kernelspec_and_the_record(built):
    # (the last test of the shared build)
    from jupyter_client.kernelspec import KernelSpecManager

    ws, record = built["ws"], built["record"]
    removed = json.loads(mlops("env", "remove", "tiny", "--json", ws=ws).stdout)
    assert removed == {"name": "tiny", "version": record["version"], "removed": True}
    assert record["kernel_name"] not in KernelSpecManager().find_kernel_specs()
    assert not Path(record["venv_path"]).exists()
    assert json.loads(mlops("env", "list", "--json", ws=ws).stdout) == []


def test_failed_build_leaves_nothing_marked_ready(tmp_path):
    ws = Workspace(tmp_path / "ws")
    spec = write_spec(tmp_path, "broken", f'python: "{PYTHON}"\npip: [mlops-no-such-package-x7q]\n')
    envs = Environments(ws)
    record = envs.register(spec)
    with pytest.raises(BuildFailed) as excinfo:
        envs.build("broken")
    # the message carries pip's own last lines, and says what to fix
    assert "mlops-no-such-package-x7q" in str(excinfo.value) and "ERROR" in excinfo.value.data["output"]
    assert str(spec) in str(excinfo.value)
    failed = envs.show("broken")
    assert failed.status == "failed" and failed.venv_path is None and failed.kernel_name is None
    assert "mlops-no-such-package-x7q" in (failed.error or "")
    assert not (ws.root / "envs" / f"broken-{record.version[:12]}").exists()


def test_python_version_not_available_names_it(tmp_path):
    ws = Workspace(tmp_path / "ws")
    envs = Environments(ws)
    envs.register(write_spec(tmp_path, "future", 'python: "3.99"\npip: [six]\n'))
    with pytest.raises(InvalidInput, match=r"Python 3\.99") as excinfo:
        envs.build("future")
    assert PYTHON in excinfo.value.data["available"] and PYTHON in str(excinfo.value)
    assert envs.show("future").status == "failed"
    assert not any((ws.root / "envs").glob("future-*"))


def test_content_hash_is_the_version(tmp_path):
    base = write_spec(tmp_path / "a", "train", 'python: "3.11"\npip: [pandas>=2, six]\n')
    # the same content, with the list in another order and comments, elsewhere: the same version
    moved = write_spec(tmp_path / "b", "train", '# moved\npython: "3.11"\npip: [six, "pandas>=2"]\n')
    assert load_spec(base).version == load_spec(moved).version
    assert load_spec(base).name == "train" and load_spec(base).requirements == ("pandas>=2", "six")
    # any change of the python version or of a requirement is a new version
    assert load_spec(write_spec(tmp_path / "c", "train", 'python: "3.12"\npip: [pandas>=2, six]\n')).version != (
        load_spec(base).version
    )
    assert load_spec(write_spec(tmp_path / "d", "train", 'python: "3.11"\npip: [pandas>=2]\n')).version != (
        load_spec(base).version
    )
    # a requirements file (relative to the spec) is part of the content
    with_file = write_spec(tmp_path / "e", "train", 'python: "3.11"\nrequirements: requirements.txt\n')
    (with_file.parent / "requirements.txt").write_text("six\n# pinned later\n")
    first = load_spec(with_file)
    assert first.requirements == ("six",)
    (with_file.parent / "requirements.txt").write_text("six==1.17.0\n")
    assert load_spec(with_file).version != first.version
    # nested -r files are inlined; a -c constraints file is hashed and handed to pip by its absolute path
    folder = with_file.parent.resolve()
    (folder / "base.txt").write_text("tomli\n")
    (folder / "pins.txt").write_text("six==1.17.0\n")
    (folder / "requirements.txt").write_text("six\n-r base.txt\n-c pins.txt\n")
    nested = load_spec(with_file)
    assert nested.requirements == tuple(sorted(["six", "tomli", f"-c {folder / 'pins.txt'}"]))
    (folder / "pins.txt").write_text("six==1.16.0\n")
    assert load_spec(with_file).version != nested.version

    # registering a changed spec adds a version; show gives the newest, or the one asked for
    ws = Workspace(tmp_path / "ws")
    envs = Environments(ws)
    old = envs.register(base)
    assert envs.register(base) == old  # the same content again: the same record
    changed = base.read_text().replace("six", "six==1.17.0")
    base.write_text(changed)
    new = envs.register(base)
    assert new.version != old.version and envs.show("train") == new
    assert envs.show("train", old.version[:10]) == old
    assert [e.version for e in envs.list()] == [new.version, old.version]
    with pytest.raises(NotFound, match=old.version[:12]):
        envs.show("train", "ffffffffff")


def test_conda_environment_file(tmp_path):
    folder = tmp_path / "conda"
    folder.mkdir()
    good = folder / "environment.yml"
    good.write_text(
        "name: churn\nchannels: [conda-forge]\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n    - six\n"
    )
    spec = load_spec(good)
    assert (spec.name, spec.python, spec.requirements) == ("churn", "3.11", ("six",))
    # a conda-only dependency is an error that names it (and says what to do)
    good.write_text("name: churn\ndependencies:\n  - python=3.11\n  - conda-forge::numpy=1.26\n  - pip:\n    - six\n")
    with pytest.raises(InvalidInput) as excinfo:
        load_spec(good)
    message = str(excinfo.value)
    assert "conda-forge::numpy=1.26" in message and str(good) in message and "'dependencies'" in message
    assert "- pip:" in message and excinfo.value.data["conda_only"] == ["conda-forge::numpy=1.26"]


@pytest.mark.parametrize(
    ("body", "key", "hint"),
    [
        ('name: t\npython: "3.11"\npackages: [six]\n', "packages", "unknown key"),
        ("name: t\npip: [six]\n", "python", 'python: "3.11"'),
        ("name: t\npython: 3.10\n", "python", 'quote it, python: "3.10"'),
        ('name: t\npython: "3.11"\npip: six\n', "pip", "valid list"),
        ('name: "t t"\npython: "3.11"\n', "name", "letters, digits"),
        ('name: t\npython: "3.11"\nrequirements: missing.txt\n', "requirements", "does not exist"),
    ],
)
def test_schema_errors_name_the_file_and_the_key(tmp_path, body, key, hint):
    spec = write_spec(tmp_path, "t", body)
    with pytest.raises(InvalidInput) as excinfo:
        load_spec(spec)
    message = str(excinfo.value)
    assert str(spec) in message and f"'{key}'" in message and hint in message, message


def test_cli_register_error_is_one_line_on_stderr(tmp_path):
    spec = write_spec(tmp_path, "t", 'name: t\npython: "3.11"\npipp: [six]\n')
    result = mlops("env", "register", str(spec), "--json", ws=tmp_path / "ws", check=False)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("error: ") and "'pipp'" in result.stderr and str(spec) in result.stderr
    assert os.path.basename(str(spec)) in result.stderr
