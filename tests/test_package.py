"""Packaging: build contexts written from real registered models, KServe manifests validated against KServe's
schema, and an image built by a real Docker engine serving real HTTP requests.

The Docker tests use the engine DOCKER_HOST names, else the one `scripts/ensure-docker` starts; where none answers
they are skipped, saying so.
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import yaml

from jupyter_mlops import BackendUnavailable, Conflict, InvalidInput, NotFound, Workspace
from jupyter_mlops.deploy.package import package

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "kserve-inferenceservice-v1beta1.json").read_text())
PRIVATE_ENGINE = Path.home() / ".cache" / "jupyter-mlops" / "docker" / "docker.sock"
LOCAL_BASE = "jupyter-mlops-base:bookworm"
COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
PINNED = re.compile(r"^[a-z0-9][a-z0-9._-]*(\[[a-z0-9,._-]+\])?==\S+$")


@pytest.fixture(scope="module")
def iris():
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True, as_frame=True)


@pytest.fixture(scope="module")
def ws(tmp_path_factory, iris) -> Workspace:
    """iris:1 (scikit-learn), iris:2 (its proven ONNX conversion), iris:3 (another scikit-learn model)."""
    from sklearn.linear_model import LogisticRegression

    from jupyter_mlops.deploy.onnx import convert_to_onnx

    X, y = iris
    workspace = Workspace(tmp_path_factory.mktemp("package") / "ws")
    workspace.models.register(LogisticRegression(max_iter=500).fit(X, y), "iris")
    convert_to_onnx(workspace, "iris:1", X[:50])
    workspace.models.register(LogisticRegression(max_iter=500, C=0.1).fit(X, y), "iris")
    return workspace


def requirement_lines(folder: Path) -> dict[str, str]:
    lines = [line for line in (folder / "requirements.txt").read_text().splitlines() if not line.startswith("#")]
    assert lines and all(PINNED.match(line) for line in lines), lines
    return dict(line.split("==", 1) for line in lines)


def instruction(dockerfile: str, name: str) -> list[str]:
    """The JSON argument list of an ENTRYPOINT or CMD line."""
    (line,) = [line for line in dockerfile.splitlines() if line.startswith(name + " ")]
    return json.loads(line[len(name) + 1 :])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url: str, body: dict | None = None) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_ready(url: str, alive, logs, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if http(url + "/ready")[0] == 200:
                return
        except OSError:
            pass
        assert alive(), f"the server exited:\n{logs()}"
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready within {timeout} s:\n{logs()}")


def test_build_context_serves_the_onnx_conversion_with_locked_requirements(ws, tmp_path):
    # When iris:1, which has a proven ONNX conversion (iris:2), is packaged
    packaged = package(ws, "iris:1", out=tmp_path / "ctx")
    ctx = Path(packaged.folder)
    # Then the context holds the conversion, as an endpoint deployment would serve it
    assert (packaged.model, packaged.requested, packaged.name) == ("iris:2", "iris:1", "iris")
    assert sorted(p.name for p in ctx.iterdir()) == ["Dockerfile", "jupyter_mlops", "model", "requirements.txt"]
    assert (ctx / "model" / "MLmodel").is_file() and (ctx / "model" / "model.onnx").is_file()
    # And the serving runtime and the model's own requirements at the versions installed here, without MLflow
    pins = requirement_lines(ctx)
    for name in ("starlette", "uvicorn", "prometheus-client", "numpy", "onnxruntime", "pyyaml", "onnx", "anyio"):
        assert pins[name] == importlib.metadata.version(name), name
    assert "mlflow" not in pins and "jupyter-mlops" not in pins
    assert packaged.requirements == [f"{name}=={version}" for name, version in pins.items()]
    # And the package's Python source only
    source = ctx / "jupyter_mlops"
    assert (source / "deploy" / "serve.py").is_file() and (source / "deploy" / "scoring.py").is_file()
    assert {p.suffix for p in source.rglob("*") if p.is_file()} == {".py"}
    assert not (source / "labextension").exists()
    # And a Dockerfile with a base image argument running the endpoint worker's entrypoint
    dockerfile = (ctx / "Dockerfile").read_text()
    assert "ARG BASE=python:3.11-slim\nFROM ${BASE}\n" in dockerfile
    assert "RUN pip install -r /app/requirements.txt" in dockerfile and "PIP_CERT" not in dockerfile
    assert instruction(dockerfile, "ENTRYPOINT") == [
        *("python", "-m", "jupyter_mlops.deploy.serve", "--model-dir", "/app/model", "--name", "iris"),
    ]
    assert instruction(dockerfile, "CMD") == ["--host", "0.0.0.0", "--port", "8080"]


def test_the_context_runs_its_own_copy_of_the_entrypoint_without_mlflow(ws, tmp_path, iris):
    # Given a build context, run as the image runs it (from /app) but without Docker
    ctx = Path(package(ws, "iris:1", out=tmp_path / "ctx").folder)
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, pathlib, jupyter_mlops; from jupyter_mlops.deploy.scoring import load_scorer; "
            "load_scorer(pathlib.Path('model')); print(jupyter_mlops.__file__, 'mlflow' in sys.modules)",
        ],
        cwd=ctx,
        capture_output=True,
        text=True,
    )
    # Then the copied package is the one imported, and the ONNX model loads without MLflow
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == [str(ctx / "jupyter_mlops" / "__init__.py"), "False"]
    # And the entrypoint serves /ready and /score
    port = free_port()
    entrypoint = instruction((ctx / "Dockerfile").read_text(), "ENTRYPOINT")
    command = [sys.executable, *entrypoint[1:], "--host", "127.0.0.1", "--port", str(port)]
    command[command.index("/app/model")] = str(ctx / "model")
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        server = subprocess.Popen(command, cwd=ctx, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, lambda: server.poll() is None, log.read_text)
        X, _ = iris
        status, body = http(url + "/score", {"dataframe_split": {"columns": COLUMNS, "data": X.values[:3].tolist()}})
        assert status == 200 and len(json.loads(body)["predictions"]) == 3
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_an_mlflow_model_served_by_mlflow_needs_its_requirements(ws, tmp_path):
    # When the conversion is opted out of
    packaged = package(ws, "iris:1", out=tmp_path / "ctx", onnx=False)
    ctx = Path(packaged.folder)
    # Then the original is served through MLflow, which the image then installs with the model's requirements
    assert packaged.model == "iris:1" and (ctx / "model" / "model.pkl").is_file()
    pins = requirement_lines(ctx)
    for name in ("mlflow", "scikit-learn", "cloudpickle", "starlette", "uvicorn"):
        assert pins[name] == importlib.metadata.version(name), name
    assert instruction((ctx / "Dockerfile").read_text(), "ENTRYPOINT")[-1] == "--no-onnx"


def test_a_scoring_script_comes_with_its_code_folder(ws, tmp_path):
    code = tmp_path / "src"
    (code / "__pycache__").mkdir(parents=True)
    (code / ".git").mkdir()
    (code / "score.py").write_text("from helper import double\ndef init(): pass\ndef run(raw): return double(1)\n")
    (code / "helper.py").write_text("def double(x): return 2 * x\n")
    (code / "__pycache__" / "helper.cpython-311.pyc").write_bytes(b"\0")
    (code / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    # When a model is packaged with a scoring script, with the context inside the script's folder
    packaged = package(ws, "iris:1", out=code / "build", scoring_script=code / "score.py", name="Iris Custom")
    ctx = Path(packaged.folder)
    # Then the version itself is served (a script gets no ONNX swap) by the script, with its code and no caches
    assert (packaged.model, packaged.name) == ("iris:1", "iris-custom")
    assert sorted(str(p.relative_to(ctx / "code")) for p in (ctx / "code").rglob("*")) == ["helper.py", "score.py"]
    dockerfile = (ctx / "Dockerfile").read_text()
    assert "COPY code /app/code" in dockerfile
    assert instruction(dockerfile, "ENTRYPOINT")[-4:] == [
        *("--name", "iris-custom", "--scoring-script", "/app/code/score.py"),
    ]
    assert "mlflow" in requirement_lines(ctx)  # the model's own requirements: the script may load it with MLflow


def test_an_environment_lock_replaces_the_model_requirements(ws, tmp_path):
    from jupyter_mlops.environments import Environments

    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    spec = tmp_path / "envs" / "tiny.yaml"
    spec.parent.mkdir()
    spec.write_text(f'name: tiny\npython: "{python}"\npip: [six]\n')
    Environments(ws).register(spec)
    # When packaged in a registered environment (built on demand: its lock is its pip freeze)
    packaged = package(ws, "iris:1", out=tmp_path / "ctx", environment="tiny")
    # Then the image installs that lock, plus the serving runtime it lacks
    pins = requirement_lines(Path(packaged.folder))
    lock = dict(
        line.lower().replace("_", "-").split("==", 1)
        for line in Environments(ws).show("tiny").lock.splitlines()
        if "==" in line
    )
    assert pins["six"] == lock["six"] and pins["ipykernel"] == lock["ipykernel"]
    assert pins["starlette"] == importlib.metadata.version("starlette") and "onnxruntime" in pins
    assert f"ARG BASE=python:{python}-slim" in (Path(packaged.folder) / "Dockerfile").read_text()


def test_kserve_manifest_is_a_valid_inference_service(ws, tmp_path):
    # When a KServe manifest is asked for, with the tag the cluster will pull
    packaged = package(ws, "iris:1", out=tmp_path / "ctx", kserve=True, tag="registry.example/iris:2")
    manifest = yaml.safe_load(Path(packaged.manifest).read_text())
    # Then it is an InferenceService KServe's schema accepts: the image as a custom container on 8080, probed
    jsonschema.validate(manifest, SCHEMA)
    assert manifest["metadata"]["name"] == "iris"
    predictor = manifest["spec"]["predictor"]
    (container,) = predictor["containers"]
    assert container["image"] == packaged.image == "registry.example/iris:2"
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": 8080}
    assert "canaryTrafficPercent" not in predictor


@pytest.mark.parametrize(
    "path, value",
    [
        (("spec", "predictor", "canaryTrafficPercent"), "10%"),
        (("spec", "predictor", "canaryTrafficPercent"), 150),
        (("spec", "predictor", "containers", 0, "ports", 0, "containerPort"), "http"),
        (("spec", "predictor", "containers", 0, "readinessProbe", "httpGet", "port"), [8080]),
        (("spec", "predictor", "contianers"), []),
        (("metadata", "name"), "Iris_Model"),
        (("kind",), "Deployment"),
    ],
)
def test_the_schema_rejects_an_invalid_manifest(path, value):
    from jupyter_mlops.deploy.kserve import inference_service

    manifest = copy.deepcopy(inference_service("iris", "iris:2", model="iris:2", canary_percent=10))
    jsonschema.validate(manifest, SCHEMA)
    node = manifest
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(manifest, SCHEMA)


def test_a_container_without_a_name_is_rejected():
    from jupyter_mlops.deploy.kserve import inference_service

    manifest = inference_service("iris", "iris:2", model="iris:2")
    del manifest["spec"]["predictor"]["containers"][0]["name"]
    with pytest.raises(jsonschema.ValidationError, match="'name' is a required property"):
        jsonschema.validate(manifest, SCHEMA)


def test_the_canary_share_comes_from_the_endpoint_traffic(ws, tmp_path):
    # Given an endpoint sending 90% to iris:1 (served as its ONNX conversion) and 10% to iris:3
    endpoint = ws.endpoints.create("iris-rollout", auth="none")
    try:
        endpoint.deploy("blue", "iris:1")
        endpoint.deploy("green", "iris:3")
        endpoint.set_traffic({"blue": 90, "green": 10})

        # When each version is packaged for KServe against that endpoint
        def manifest_of(model: str) -> dict:
            out = tmp_path / model.replace(":", "-")
            packaged = package(ws, model, out=out, kserve=True, endpoint="iris-rollout")
            return yaml.safe_load(Path(packaged.manifest).read_text())

        manifests = {model: manifest_of(model) for model in ("iris:1", "iris:3")}
        # Then both name the endpoint's InferenceService, each with its share as the canary's
        for model, share in (("iris:1", 90), ("iris:3", 10)):
            jsonschema.validate(manifests[model], SCHEMA)
            assert manifests[model]["metadata"]["name"] == "iris-rollout"
            assert manifests[model]["spec"]["predictor"]["canaryTrafficPercent"] == share
        # And a model the endpoint does not serve is refused, naming what it serves
        ws.models.register(tmp_path / "iris-1" / "model", "other")
        with pytest.raises(InvalidInput, match="blue serves iris:2"):
            package(ws, "other:1", out=tmp_path / "other", kserve=True, endpoint="iris-rollout")
        assert not (tmp_path / "other").exists()
    finally:
        endpoint.delete()


def test_bad_input_is_refused_before_anything_is_written(ws, tmp_path):
    out = tmp_path / "ctx"
    with pytest.raises(NotFound, match="nope"):
        package(ws, "nope:1", out=out)
    with pytest.raises(NotFound):
        package(ws, "iris:99", out=out)
    with pytest.raises(NotFound):
        package(ws, "models:/iris@champion", out=out)
    with pytest.raises(InvalidInput, match="NAME:VERSION"):
        package(ws, "iris", out=out)
    with pytest.raises(InvalidInput, match=r"scoring script .*missing\.py does not exist"):
        package(ws, "iris:1", out=out, scoring_script=tmp_path / "missing.py")
    with pytest.raises(InvalidInput, match="kserve=True"):
        package(ws, "iris:1", out=out, endpoint="iris-rollout")
    with pytest.raises(NotFound, match="No endpoint named 'nowhere'"):
        package(ws, "iris:1", out=out, kserve=True, endpoint="nowhere")
    assert list(tmp_path.iterdir()) == []  # neither the folder nor a half-written one
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(Conflict, match="not an empty folder"):
        package(ws, "iris:1", out=out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_an_alias_names_the_version_and_an_empty_out_folder_is_fine(ws, tmp_path):
    ws.models.set_alias("iris", "champion", 3)
    (tmp_path / "ctx").mkdir()
    packaged = package(ws, "models:/iris@champion", out=tmp_path / "ctx")
    assert (packaged.model, packaged.folder) == ("iris:3", str(tmp_path / "ctx"))


def test_cli(ws, tmp_path):
    def mlops(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(Path(sys.executable).parent / "jupyter"), "mlops", *args, "--workspace", str(ws.root)],
            capture_output=True,
            text=True,
            env={**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"},
        )

    done = mlops("package", "iris:1", "--out", str(tmp_path / "ctx"), "--kserve", "--tag", "iris:onnx", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["model"], result["image"], result["image_id"]) == ("iris:2", "iris:onnx", None)
    jsonschema.validate(yaml.safe_load(Path(result["manifest"]).read_text()), SCHEMA)
    failed = mlops("package", "iris:7", "--out", str(tmp_path / "other"))
    assert failed.returncode == 1 and "error:" in failed.stderr and "iris" in failed.stderr
    # --build without an engine: the build context is written, and the error says how to get an engine
    failed = mlops("package", "iris:1", "--out", str(tmp_path / "built"), "--build")
    assert failed.returncode == 1 and "No Docker engine answers at unix:///nonexistent" in failed.stderr
    assert "DOCKER_HOST" in failed.stderr and (tmp_path / "built" / "Dockerfile").is_file()


def test_no_engine_is_a_backend_unavailable_naming_the_fix(tmp_path, monkeypatch):
    from jupyter_mlops.deploy import docker

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")
    for call in (
        lambda: docker.container_running("abc"),
        lambda: docker.run_container("iris:2", name="x", port=8080, env={}),
    ):
        with pytest.raises(BackendUnavailable, match=r"No Docker engine answers at unix://.*no\.sock.*ensure-docker"):
            call()


def test_host_ca_builds_trust_the_host_bundle_and_keep_the_shipped_dockerfile(monkeypatch):
    from jupyter_mlops.deploy.docker import _pip_index_settings, _with_host_ca

    # Given pip settings on this host: an https index and a file:// one a build cannot see
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.example/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "file:///opt/pypi/simple")
    settings = _pip_index_settings()
    assert settings == {"PIP_INDEX_URL": "https://mirror.example/simple"}
    # Then the build's Dockerfile copies the CA bundle and declares pip's settings right after FROM
    variant = _with_host_ca("ARG BASE=python:3.11-slim\nFROM ${BASE}\nRUN pip install x\n", settings)
    assert variant.splitlines() == [
        "ARG BASE=python:3.11-slim",
        "FROM ${BASE}",
        "COPY .host-ca.crt /usr/local/share/ca-certificates/jupyter-mlops-build-host.crt",
        "ARG PIP_CERT=/usr/local/share/ca-certificates/jupyter-mlops-build-host.crt",
        "ARG PIP_INDEX_URL",
        "RUN pip install x",
    ]


# -- a real engine ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def engine() -> Iterator[str]:
    """The DOCKER_HOST of an engine that answers; skips (saying why) when there is none."""
    host = os.environ.get("DOCKER_HOST") or (f"unix://{PRIVATE_ENGINE}" if PRIVATE_ENGINE.exists() else None)
    if host is None:
        pytest.skip(
            f"no Docker engine: DOCKER_HOST is not set and {PRIVATE_ENGINE} does not exist "
            "(scripts/ensure-docker starts one as root)"
        )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOCKER_HOST", host)
        from jupyter_mlops.deploy.docker import DockerUnavailable, _client

        try:
            _client()
        except DockerUnavailable as exc:
            pytest.skip(f"no Docker engine answers: {exc.message}")
        yield host


def test_the_image_serves_the_model_over_http(engine, ws, tmp_path, iris):
    import docker as docker_sdk

    from jupyter_mlops.deploy.docker import container_logs, container_running, run_container, stop_container

    sdk = docker_sdk.from_env()
    try:
        sdk.images.get(LOCAL_BASE)
        base = LOCAL_BASE
    except docker_sdk.errors.ImageNotFound:
        base = None  # the Dockerfile's python:3.11-slim, from the registry
    # When iris:1 is packaged and built (trusting this host's CA: TLS to the index is intercepted here)
    lines: list[str] = []
    started = time.monotonic()
    packaged = package(
        ws,
        "iris:1",
        out=tmp_path / "ctx",
        build=True,
        tag="jupyter-mlops-test/iris:onnx",
        base=base,
        host_ca=True,
        progress=lines.append,
    )
    built_in = time.monotonic() - started
    assert packaged.image_id == sdk.images.get("jupyter-mlops-test/iris:onnx").id
    assert any("pip install -r /app/requirements.txt" in line for line in lines)
    assert built_in < 300, f"the build took {built_in:.0f} s"
    assert not list(Path(packaged.folder).glob(".*"))  # the CA bundle went into the build, not into the context
    # And run as a container serving on a port of this host
    port = free_port()
    name = f"mlops-test-{uuid.uuid4().hex[:8]}"
    container = run_container(packaged.image, name=name, port=port, env={})
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, lambda: container_running(container), lambda: container_logs(container, 50))
        # Then it answers /ready, /health and /score with the model's predictions
        X, _ = iris
        from sklearn.linear_model import LogisticRegression

        expected = LogisticRegression(max_iter=500).fit(X, iris[1]).predict(X[:5]).tolist()
        status, body = http(url + "/score", {"dataframe_split": {"columns": COLUMNS, "data": X.values[:5].tolist()}})
        assert (status, json.loads(body)["predictions"]) == (200, expected)
        assert http(url + "/health")[0] == 200
        status, body = http(url + "/score", {"dataframe_split": {"columns": COLUMNS, "data": [[1, 2]]}})
        assert status == 400, body
        assert http(url + "/metrics")[0] == 200
        assert f"on 127.0.0.1:{port}" in container_logs(container, 20)
        # And a second container of the same name is refused while it runs
        with pytest.raises(Conflict, match=name):
            run_container(packaged.image, name=name, port=free_port(), env={})
    finally:
        stop_container(container)
        sdk.images.remove(packaged.image, force=True, noprune=True)  # its layers stay as the next build's cache
    assert not container_running(container)
    stop_container(container)  # stopping twice is fine


def test_a_failed_build_says_why(engine, tmp_path):
    from jupyter_mlops.deploy.docker import ImageBuildFailed, build_image

    (tmp_path / "Dockerfile").write_text("FROM scratch\nRUN false\n")
    with pytest.raises(ImageBuildFailed, match="Building jupyter-mlops-test/broken:1 failed"):
        build_image(tmp_path, "jupyter-mlops-test/broken:1", base=None, host_ca=False)


def test_a_docker_deployment_serves_behind_the_endpoint(engine, ws, iris, monkeypatch):
    import docker as docker_sdk

    from jupyter_mlops.deploy.docker import container_running

    try:
        docker_sdk.from_env().images.get(LOCAL_BASE)
        monkeypatch.setenv("MLOPS_DOCKER_BASE", LOCAL_BASE)
    except docker_sdk.errors.ImageNotFound:
        pass  # the Dockerfile's python:3.11-slim, from the registry
    monkeypatch.setenv("MLOPS_DOCKER_HOST_CA", "1")  # TLS to the index is intercepted here
    X, _ = iris
    rows = {"dataframe_split": {"columns": COLUMNS, "data": X.values[:3].tolist()}}
    ep = ws.endpoints.create("iris-docker")
    try:
        # Given blue in the endpoint's workers and green as a container
        ep.deploy("blue", "iris:1")
        green = ep.deploy("green", "iris:1", target="docker")
        ep.set_traffic({"blue": 50, "green": 50})
        assert green.runs_in == "docker" and green.model == "iris:2"  # its proven ONNX conversion
        # Then both answer through the same /score with the same predictions
        expected = ep.invoke(rows, deployment="blue")
        assert ep.invoke(rows, deployment="green") == expected
        answered = set()
        for _ in range(30):
            request = urllib.request.Request(
                ep.scoring_uri, json.dumps(rows).encode(), {"Authorization": f"Bearer {ep.key}"}
            )
            with urllib.request.urlopen(request) as response:
                answered.add(response.headers["mlops-model-deployment"])
        assert answered == {"blue", "green"}
        # and its log is the container's
        assert "serving" in ep.logs("green")
        container = json.loads(_deployment_options(ws, "iris-docker", "green"))["process"]["container"]
        assert container_running(container)
    finally:
        ep.delete()
    # Deleting the endpoint stops the container
    assert not container_running(container)


def _deployment_options(ws: Workspace, endpoint: str, deployment: str) -> str:
    from sqlalchemy import select

    from jupyter_mlops.store.schema import Deployment

    with ws.store.session() as session:
        row = session.scalar(select(Deployment).where(Deployment.endpoint == endpoint, Deployment.name == deployment))
        return row.options


def test_a_container_deployment_without_an_engine_counts_as_stopped(monkeypatch, tmp_path):
    from jupyter_mlops.deploy import isolated

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")
    launch = isolated.Launch("docker", 1, "key", ["image"], str(tmp_path / "log"), container="0123abcd")
    assert not isolated.running(launch)
    isolated.stop(launch)  # nothing to stop, no error: the endpoint can still be deleted
