"""Deployment resources: parsing and refusals, device selection, and what each target applies.

Real endpoints where the behaviour shows on this machine: the intra-op threads a router worker loads a model with,
the CPU affinity and address-space limit of a deployment's own process read from /proc, the memory-limit refusal,
a process that outgrows its limit restarted and reported as such. The GPU paths are tested through the selection
logic (this machine has no CUDA device), the container through the arguments built for the engine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_mlops import InvalidInput, Workspace
from jupyter_mlops.deploy import resources as r
from jupyter_mlops.environments import Environments
from jupyter_mlops.exceptions import EndpointError
from tests.waiting import eventually, wait_gone

PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"
SCHEMA = json.loads((Path(__file__).parent / "schemas" / "kserve-inferenceservice-v1beta1.json").read_text())
GPU_HERE = r.detect().devices > 0


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Iterator[Workspace]:
    """iris:1 (ONNX), iris:2 (scikit-learn, served as pyfunc), big:1 (an ONNX forest of a few MB), and a bare
    environment for deployments of their own."""
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    root = tmp_path_factory.mktemp("resources")
    workspace = Workspace(root / "ws")
    X, y = load_iris(return_X_y=True)
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    workspace.models.register(to_onnx(model, X[:1].astype("float32"), options={"zipmap": False}), "iris")
    workspace.models.register(model, "iris")
    rng = np.random.default_rng(0)
    big_X = rng.normal(size=(3000, 8)).astype("float32")
    big = RandomForestClassifier(n_estimators=40, random_state=0).fit(big_X, rng.integers(0, 2, 3000))
    workspace.models.register(to_onnx(big, big_X[:1], options={"zipmap": False}), "big")
    spec = root / "envs" / "bare.yaml"
    spec.parent.mkdir()
    spec.write_text(f'name: bare\npython: "{PYTHON}"\npip: [six]\n')
    Environments(workspace).register(spec)
    yield workspace
    for info in workspace.endpoints.list():
        workspace.endpoints.delete(info.name)


@pytest.fixture(scope="module")
def script(tmp_path_factory) -> Path:
    """A scoring script that reports its process (pid, CPUs, device) and allocates what a request asks for."""
    path = tmp_path_factory.mktemp("script") / "score.py"
    path.write_text(
        textwrap.dedent(
            """
            import json, os
            def init():
                pass
            def run(raw_data):
                data = json.loads(raw_data)
                if "grow" in data:
                    held = bytearray(data["grow"])
                    return {"grew": len(held)}
                return {"pid": os.getpid(), "cpus": sorted(os.sched_getaffinity(0)),
                        "device": os.environ.get("MLOPS_DEVICE"), "visible": os.environ.get("CUDA_VISIBLE_DEVICES")}
            """
        )
    )
    return path


def _rows(ws: Workspace, endpoint: str):
    from sqlalchemy import select

    from jupyter_mlops.store.schema import Deployment

    with ws.store.session() as session:
        return list(session.scalars(select(Deployment).where(Deployment.endpoint == endpoint)).all())


# -- parsing --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "cpu", "memory", "gpu"),
    [
        ({"cpu": 2, "memory": "2Gi", "gpu": 0}, 2.0, 2 * 2**30, 0),
        ({"cpu": "500m", "memory": "512Mi"}, 0.5, 512 * 2**20, 0),
        ({"cpu": 1.5, "memory": 1_000_000}, 1.5, 1_000_000, 0),
        ({"memory": "1G", "gpu": "prefer"}, None, 10**9, "prefer"),
        ({"gpu": 2}, None, None, 2),
    ],
)
def test_resources_are_parsed_in_the_accepted_forms(given, cpu, memory, gpu):
    parsed = r.parse(given, machine=False)
    assert (parsed.cpu, parsed.memory, parsed.gpu) == (cpu, memory, gpu)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"cpu": 0}, r"cpu=0 is not a number of cores: give a positive number such as 1, 2 or 0.5, or millicores"),
        ({"cpu": -1}, r"cpu=-1 is not a number of cores"),
        ({"cpu": "two"}, r"cpu='two' is not a number of cores"),
        ({"memory": "2Gb"}, r"memory='2Gb' is not an amount of memory: give .*Ki, Mi, Gi, Ti \(e.g. '512Mi', '2Gi'\)"),
        ({"memory": "lots"}, r"memory='lots' is not an amount of memory"),
        ({"memory": 0}, r"memory=0 is not an amount of memory"),
        ({"gpu": -1}, r"gpu=-1 is not a number of GPUs: give 0 \(none\), 1 or more .* or 'prefer'"),
        ({"gpu": True}, r"gpu=True is not a number of GPUs"),
        ({"disk": "1Gi"}, r"Unknown resource\(s\) 'disk': resources is a dict with any of cpu"),
        ("2 cores", r"resources is a dict with any of cpu .*; not '2 cores'"),
    ],
)
def test_bad_resources_are_refused_naming_the_value_and_the_accepted_forms(given, message):
    with pytest.raises(InvalidInput, match=message):
        r.parse(given)


def test_more_cores_than_the_machine_has_are_refused_here_but_not_for_a_package():
    cores = r.machine_cores()
    with pytest.raises(InvalidInput, match=f"cpu={cores + 1} is more than this machine's {cores} core"):
        r.parse({"cpu": cores + 1})
    assert r.parse({"cpu": cores + 1}, machine=False).cpu == cores + 1


# -- device selection -----------------------------------------------------------------------------------------------
WITH_GPU = r.GpuSupport(2, (r.CUDA, r.CPU), "onnxruntime-gpu 1.20.0")
NO_DEVICE = r.GpuSupport(0, (r.CUDA, r.CPU), "onnxruntime-gpu 1.20.0")
CPU_ORT = r.GpuSupport(1, (r.CPU,), "onnxruntime 1.20.0")


def test_a_gpu_puts_onnx_on_cuda_and_gives_other_models_the_device_in_the_environment():
    onnx = r.place(r.parse({"gpu": 1}, machine=False), onnx=True, support=WITH_GPU)
    assert onnx.provider == r.CUDA and onnx.env == {"MLOPS_DEVICE": "cuda:0", "CUDA_VISIBLE_DEVICES": "0"}
    two = r.place(r.parse({"gpu": 2}, machine=False), onnx=False, support=WITH_GPU)
    assert two.provider == "cuda" and two.env["CUDA_VISIBLE_DEVICES"] == "0,1"
    none = r.place(r.parse({"gpu": 0}, machine=False), onnx=True, support=WITH_GPU)
    assert none.provider == r.CPU and none.env == {"MLOPS_DEVICE": "cpu", "CUDA_VISIBLE_DEVICES": ""}


def test_a_gpu_that_is_not_there_is_refused_naming_what_is_missing():
    with pytest.raises(InvalidInput, match="no CUDA device on this machine") as refused:
        r.place(r.parse({"gpu": 1}, machine=False), onnx=True, support=NO_DEVICE)
    assert "onnxruntime" not in refused.value.message
    with pytest.raises(InvalidInput, match=r"onnxruntime 1.20.0 without CUDA .*install onnxruntime-gpu in place"):
        r.place(r.parse({"gpu": 1}, machine=False), onnx=True, support=CPU_ORT)
    with pytest.raises(InvalidInput, match="3 GPUs asked for, this machine has 2"):
        r.place(r.parse({"gpu": 3}, machine=False), onnx=True, support=WITH_GPU)
    # a pyfunc model needs the device, not onnxruntime's provider
    assert r.place(r.parse({"gpu": 1}, machine=False), onnx=False, support=CPU_ORT).provider == "cuda"


def test_gpu_prefer_falls_back_to_the_cpu_and_says_why():
    placed = r.place(r.parse({"gpu": "prefer"}, machine=False), onnx=True, support=CPU_ORT)
    assert placed.provider == r.CPU and "gpu preferred, on the CPU: onnxruntime 1.20.0 without CUDA" in placed.note
    assert r.place(r.parse({"gpu": "prefer"}, machine=False), onnx=True, support=WITH_GPU).provider == r.CUDA


def test_an_environment_has_cuda_only_with_onnxruntime_gpu_in_its_lock():
    assert r.lock_support("numpy==2.0\nonnxruntime-gpu==1.20.0\n", 1).cuda_provider
    support = r.lock_support("numpy==2.0\nonnxruntime==1.20.0\n", 1)
    assert not support.cuda_provider and support.onnxruntime == "onnxruntime 1.20.0"
    assert r.lock_support("six==1.16\n", 1).providers == ()


@pytest.mark.skipif(GPU_HERE, reason="this machine has a CUDA device")
def test_this_machine_has_no_cuda_device_and_its_onnxruntime_no_cuda_provider():
    here = r.detect()
    assert here.devices == 0 and not here.cuda_provider and here.onnxruntime.startswith("onnxruntime ")


# -- in the endpoint's workers --------------------------------------------------------------------------------------
@pytest.mark.skipif(GPU_HERE, reason="this machine has a CUDA device")
def test_refusals_come_before_anything_is_recorded(ws):
    ep = ws.endpoints.create("refused", auth="none")
    try:
        with pytest.raises(InvalidInput, match="cpu=0 is not a number of cores"):
            ep.deploy("blue", "iris:1", resources={"cpu": 0})
        with pytest.raises(InvalidInput, match="memory='2Gb' is not an amount of memory"):
            ep.deploy("blue", "iris:1", resources={"memory": "2Gb"})
        with pytest.raises(InvalidInput, match=r"gpu=1 cannot be served here: no CUDA device .*without CUDA"):
            ep.deploy("blue", "iris:1", resources={"gpu": 1})
        assert _rows(ws, "refused") == [] and ep.info.deployments == []
        # gpu="prefer" serves on the CPU and records it
        info = ep.deploy("blue", "iris:1", resources={"gpu": "prefer"})
        assert info.resources == {"gpu": "prefer"} and info.provider == r.CPU
        assert "gpu preferred, on the CPU: no CUDA device" in info.limits
    finally:
        ep.delete()


def test_in_the_workers_threads_follow_cpu_and_memory_is_checked_against_the_loaded_model(ws):
    ep = ws.endpoints.create("threads", auth="none")
    try:
        # Given an ONNX deployment with two cores and one with one core, and a pyfunc deployment with two
        two = ep.deploy("two", "iris:1", resources={"cpu": 2, "memory": "2Gi", "gpu": 0})
        ep.deploy("one", "iris:1", resources={"cpu": 1})
        ep.deploy("pyfunc", "iris:2", onnx=False, resources={"cpu": 2})
        # Then each is recorded with what it asked for and where it infers, and the worker loaded it so
        assert two.resources == {"cpu": 2, "memory": "2Gi", "gpu": 0} and two.provider == r.CPU
        assert (
            two.limits
            == "2 onnxruntime intra-op and micro-batching thread(s); memory 2 GiB checked against the loaded model"
        )
        assert "on CPUExecutionProvider, 2 onnxruntime intra-op thread(s), resident" in ep.logs("two")
        assert "of 2Gi" in ep.logs("two")
        assert "1 onnxruntime intra-op thread(s)" in ep.logs("one")
        assert "on cpu, 2 micro-batching thread(s)" in ep.logs("pyfunc")
        ep.set_traffic({"two": 100})
        assert ep.invoke({"inputs": [[5.1, 3.5, 1.4, 0.2]]}) == {"predictions": [0]}
        # When a deployment's memory limit is below what its model takes once loaded, it fails naming both figures
        with pytest.raises(EndpointError, match=r"The model takes [\d.]+ (KiB|MiB) resident once loaded") as failed:
            ep.deploy("small", "big:1", resources={"memory": "256Ki"})
        assert "more than its memory limit of 256 KiB (memory='256Ki')" in failed.value.message
        assert ep.invoke({"inputs": [[5.1, 3.5, 1.4, 0.2]]}) == {"predictions": [0]}  # the others serve on
    finally:
        ep.delete()


def test_micro_batching_runs_as_many_batches_at_once_as_it_has_threads():
    import threading
    import time

    from jupyter_mlops.deploy.scoring import MicroBatcher

    def slow(items):
        time.sleep(0.3)
        return items

    for threads, most in ((1, 1), (2, 2)):
        batcher = MicroBatcher(slow, max_rows=1, max_wait_s=0.0, threads=threads)
        started = time.monotonic()

        def call(batcher=batcher):
            batcher.arriving()
            batcher.submit("x", 1)

        callers = [threading.Thread(target=call) for _ in range(2)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join()
        elapsed = time.monotonic() - started
        assert (elapsed < 0.55) == (most == 2), (threads, elapsed)


# -- in a process of its own ----------------------------------------------------------------------------------------
def _status(pid: int, field: str) -> str:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith(field + ":"))
    return line.split(":", 1)[1].strip()


def _address_space_limit(pid: int) -> str:
    line = next(x for x in Path(f"/proc/{pid}/limits").read_text().splitlines() if x.startswith("Max address space"))
    return line.split()[3]


@pytest.mark.skipif(r.memory_method() != "rlimit", reason="this machine limits memory by a cgroup, not RLIMIT_AS")
def test_a_process_of_its_own_gets_cpu_affinity_and_an_address_space_limit(ws, script):
    ep = ws.endpoints.create("own", auth="none")
    try:
        info = ep.deploy(
            "green", "iris:1", environment="bare", scoring_script=script, resources={"cpu": 1, "memory": "1Gi"}
        )
        launch = json.loads(next(x for x in _rows(ws, "own") if x.name == "green").options)["process"]
        pid = launch["pid"]
        # Then its process runs on one CPU under a 1 GiB address space, as /proc says, and ep.info says how
        cpus = launch["resources"]["cpus"]
        assert len(cpus) == 1 and _status(pid, "Cpus_allowed_list") == str(cpus[0])
        assert _address_space_limit(pid) == str(2**30)
        assert info.limits == f"CPU affinity {cpus[0]}; memory 1 GiB by address-space limit (RLIMIT_AS)"
        answer = ep.invoke({"inputs": [[1]]}, deployment="green")
        assert answer["pid"] == pid and answer["cpus"] == cpus
        assert (answer["device"], answer["visible"]) == ("cpu", "")  # gpu 0: no GPU visible to it
        # When a request makes it outgrow its limit, it exits, is restarted by its supervisor and reported as such
        with pytest.raises(EndpointError):
            ep.invoke({"grow": 2 * 2**30}, deployment="green")
        wait_gone(pid)

        def restarted():
            return [e for e in ws.endpoints.restarts("own") if e.kind == "deployment" and e.new_pid]

        [entry] = eventually(restarted, timeout=60)
        assert entry.reason.startswith("exceeded its memory limit of 1 GiB (1Gi, by address-space limit (RLIMIT_AS))")
        assert "exceeded its memory limit of 1 GiB" in ep.logs("green")

        def emitted():
            return [e for e in ws.events.tail(types=["deployment.restarted"]) if "/own/" in e.subject]

        [event] = eventually(emitted)
        assert event.data["outOfMemory"] is True and event.data["reason"] == entry.reason
        [listed] = [e for e in ws.endpoints.list() if e.name == "own"]
        assert listed.note == "deployment green exceeded its memory limit and was restarted"
        assert eventually(lambda: _answers(ep), timeout=60)
    finally:
        ep.delete()


def _answers(ep) -> bool:
    try:
        return "pid" in ep.invoke({"inputs": [[1]]}, deployment="green")
    except Exception:
        return False


@pytest.mark.skipif(r.memory_method() != "rlimit", reason="this machine limits memory by a cgroup, not RLIMIT_AS")
def test_a_process_that_cannot_start_within_its_limit_is_refused_saying_so(ws, script):
    ep = ws.endpoints.create("tight", auth="none")
    try:
        with pytest.raises(EndpointError, match=r"exceeded its memory limit of 8 MiB \(8Mi, .*\) at start"):
            ep.deploy("green", "iris:1", environment="bare", scoring_script=script, resources={"memory": "8Mi"})
        assert [x.status for x in _rows(ws, "tight")] == []  # nothing recorded, nothing left running
    finally:
        ep.delete()


def test_a_memory_limit_nothing_enforces_is_refused(ws, script, monkeypatch):
    monkeypatch.setattr(r, "memory_method", lambda: None)
    ep = ws.endpoints.create("unenforced", auth="none")
    try:
        with pytest.raises(InvalidInput, match="memory=1Gi cannot be enforced for a process on this machine"):
            ep.deploy("green", "iris:1", environment="bare", scoring_script=script, resources={"memory": "1Gi"})
        assert _rows(ws, "unenforced") == []
    finally:
        ep.delete()


def test_a_delegated_cgroup_gets_the_memory_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(r, "cgroup_parent", lambda: tmp_path)
    assert r.memory_method() == "cgroup"
    config = r.serving(r.parse({"memory": "512Mi"}), r.Placement(r.CPU), memory_via="cgroup")
    folder = r.make_cgroup(config, "ep-green-8080")
    assert (folder / "memory.max").read_text() == str(512 * 2**20)
    assert r.limits_text(config, "venv") == "memory 512 MiB by cgroup v2 memory.max"
    assert r.memory_exceeded(config, -9, "").endswith("killed by the kernel's OOM killer")
    assert r.memory_exceeded(config, 1, "Traceback ...\nValueError: no") is None


# -- containers and packages ----------------------------------------------------------------------------------------
def test_a_container_gets_nano_cpus_mem_limit_and_gpu_device_requests():
    from jupyter_mlops.deploy.docker import run_arguments

    resources = r.parse({"cpu": 1.5, "memory": "2Gi", "gpu": 1}, machine=False)
    given = r.serving(resources, r.place(resources, onnx=True, support=WITH_GPU))
    kwargs = run_arguments(
        "img:1", name="mlops-8080", port=8080, env={"K": "v"}, arguments=["--workers", "2"], resources=given
    )
    assert kwargs["nano_cpus"] == 1_500_000_000 and kwargs["mem_limit"] == kwargs["memswap_limit"] == 2 * 2**30
    [request] = kwargs["device_requests"]
    assert request["Capabilities"] == [["gpu"]] and request["DeviceIDs"] == ["0"]
    assert kwargs["command"] == ["--host", "127.0.0.1", "--port", "8080", "--workers", "2"]
    plain = run_arguments("img:1", name="n", port=1, resources=None)
    assert not {"nano_cpus", "mem_limit", "device_requests"} & set(plain)
    assert r.limits_text(given, "docker") == f"nano_cpus 1500000000; mem_limit {2 * 2**30}; 1 GPU device request"


def test_a_container_under_its_limits_in_a_real_engine():
    try:
        import docker

        docker.from_env().ping()
    except Exception as exc:
        pytest.skip(f"no Docker engine answers here ({type(exc).__name__}): the container's arguments are tested above")
    pytest.skip("a real container under limits needs an image build: covered by tests/test_package.py's engine tests")


def test_a_package_documents_its_resources_and_its_manifest_requests_them(ws, tmp_path):
    import jsonschema
    import yaml

    from jupyter_mlops.deploy.package import package

    packaged = package(
        ws, "iris:1", out=tmp_path / "ctx", kserve=True, resources={"cpu": "500m", "memory": "1Gi", "gpu": 1}
    )
    folder = Path(packaged.folder)
    dockerfile = (folder / "Dockerfile").read_text()
    assert "# Resources: cpu 0.5, memory 1Gi, gpu 1 (1 GiB); give them when it runs:" in dockerfile
    assert f"docker run --network host --cpus 0.5 --memory {2**30}b --gpus 1 IMAGE" in dockerfile
    assert 'LABEL org.jupyter-mlops.resources="{\\"cpu\\": 0.5, \\"memory\\": \\"1Gi\\", \\"gpu\\": 1}"' in dockerfile
    requirements = (folder / "requirements.txt").read_text()
    assert "onnxruntime-gpu==" in requirements and "\nonnxruntime==" not in requirements
    manifest = yaml.safe_load((folder / "inferenceservice.yaml").read_text())
    jsonschema.validate(manifest, SCHEMA)
    container = manifest["spec"]["predictor"]["containers"][0]
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "500m", "memory": "1Gi", "nvidia.com/gpu": 1},
    }
    with pytest.raises(InvalidInput, match="memory='lots' is not an amount of memory"):
        package(ws, "iris:1", out=tmp_path / "bad", resources={"memory": "lots"})
    assert not (tmp_path / "bad").exists()


def test_a_package_of_an_endpoint_takes_its_deployment_resources_and_the_cli_takes_flags(ws, tmp_path):
    import jsonschema
    import yaml

    from jupyter_mlops.deploy.package import package

    ep = ws.endpoints.create("packaged", auth="none")
    try:
        ep.deploy("blue", "iris:1", resources={"cpu": 1, "memory": "512Mi"})
        packaged = package(ws, "iris:1", out=tmp_path / "ctx", kserve=True, endpoint="packaged")
        manifest = yaml.safe_load(Path(packaged.manifest).read_text())
        jsonschema.validate(manifest, SCHEMA)
        limits = {"cpu": "1", "memory": "512Mi"}
        assert manifest["spec"]["predictor"]["containers"][0]["resources"] == {"requests": limits, "limits": limits}
        # the CLI: the same flags on `package` and on `endpoints deploy`
        env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
        jupyter = str(Path(sys.executable).parent / "jupyter")
        done = subprocess.run(
            [
                jupyter,
                "mlops",
                "package",
                "iris:1",
                "--out",
                str(tmp_path / "cli"),
                "--kserve",
                "--cpu",
                "2",
                "--memory",
                "1Gi",
                "--json",
                "--workspace",
                str(ws.root),
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        manifest = yaml.safe_load(Path(json.loads(done.stdout)["manifest"]).read_text())
        assert manifest["spec"]["predictor"]["containers"][0]["resources"]["limits"] == {"cpu": "2", "memory": "1Gi"}
        deployed = subprocess.run(
            [
                jupyter,
                "mlops",
                "endpoints",
                "deploy",
                "packaged",
                "green",
                "iris:1",
                "--cpu",
                "1",
                "--memory",
                "1Gi",
                "--workspace",
                str(ws.root),
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        assert deployed.returncode == 0, deployed.stderr
        assert (
            "on CPUExecutionProvider." in deployed.stdout and "Resources: cpu 1, memory 1Gi, gpu 0" in deployed.stdout
        )
        [green] = [d for d in ep.info.deployments if d.name == "green"]
        assert green.resources == {"cpu": 1, "memory": "1Gi", "gpu": 0}
        refused = subprocess.run(
            [
                jupyter,
                "mlops",
                "endpoints",
                "deploy",
                "packaged",
                "red",
                "iris:1",
                "--memory",
                "2Gb",
                "--workspace",
                str(ws.root),
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        assert refused.returncode != 0 and "memory='2Gb' is not an amount of memory" in refused.stderr
    finally:
        ep.delete()


# -- batch endpoints ------------------------------------------------------------------------------------------------
def test_batch_workers_take_the_same_resources(ws, tmp_path):
    import pandas as pd

    script = tmp_path / "batch_score.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, resource
            def init():
                pass
            def run(mini_batch):
                return [f"{len(os.sched_getaffinity(0))}/{resource.getrlimit(resource.RLIMIT_AS)[0]}/"
                        f"{os.environ.get('MLOPS_DEVICE')}" for _ in mini_batch]
            """
        )
    )
    data = tmp_path / "in"
    data.mkdir()
    for i in range(2):
        pd.DataFrame({"x": [i]}).to_csv(data / f"{i}.csv", index=False)
    with pytest.raises(InvalidInput, match="cpu=0 is not a number of cores"):
        ws.batch.create("sized", "iris:2", scoring_script=script, resources={"cpu": 0})
    endpoint = ws.batch.create("sized", "iris:2", scoring_script=script, resources={"cpu": 1, "memory": "2Gi"})
    try:
        assert endpoint.resources == {"cpu": 1, "memory": "2Gi", "gpu": 0} and endpoint.provider == "cpu"
        result = ws.batch.invoke("sized", data, progress=False)
        predictions = pd.read_csv(result.output)["prediction"].tolist()
        assert predictions == [f"1/{2 * 2**30}/cpu"] * 2
    finally:
        ws.batch.delete("sized")


def test_bench_gpu_skips_saying_why_without_a_gpu():
    if GPU_HERE:
        pytest.skip("this machine has a CUDA device: the benchmark runs for real")
    bench = Path(__file__).parents[1] / "bench" / "bench_gpu.py"
    done = subprocess.run([sys.executable, str(bench)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "skipped: no CUDA device on this machine" in done.stdout
