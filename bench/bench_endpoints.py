"""Endpoint benchmark: our router against `mlflow models serve` and a bare Starlette + onnxruntime app.

Run with ``.venv/bin/python bench/bench_endpoints.py`` (needs ``wrk``: ``apt-get install wrk``). Same model for
everyone: a RandomForest (100 trees, depth 10, 20 features), single-row requests at concurrency 8.

1. Throughput and p99: ours (two ONNX deployments, 90/10 split, two worker processes) vs ``mlflow models serve``
   on the scikit-learn version vs a bare one-worker Starlette + onnxruntime app.
2. Start to first successful ``/score``: ours (create + deploy + traffic) vs ``mlflow models serve``.
3. ONNX vs scikit-learn in process, 1 row and 1,000 rows.
4. A default deploy (no explicit conversion) of the forest saved with an MLflow input example (registering it
   converts it): start to first ``/score``, then throughput vs ``mlflow models serve`` and vs a deployment of an
   explicit ``convert_to_onnx`` conversion (same shape: one deployment, two workers; the two alternate over the
   rounds).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
logging.getLogger("mlflow").setLevel(logging.ERROR)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jupyter_mlops import Workspace  # noqa: E402
from tests.services import free_port  # noqa: E402

DURATION_S = 8
CONNECTIONS = 8
WORKERS = 2
ROUNDS = 3  # ours and the bare app alternate; medians of the rounds
BARE_APP = textwrap.dedent(
    """
    import sys, json
    import numpy as np, onnxruntime as ort, uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route
    session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    output = session.get_outputs()[0].name
    async def score(request: Request) -> Response:
        rows = json.loads(await request.body())["inputs"]
        result = session.run([output], {name: np.asarray(rows, dtype=np.float32)})[0]
        return Response(json.dumps({"predictions": result.tolist()}), media_type="application/json")
    uvicorn.run(Starlette(routes=[Route("/score", score, methods=["POST"])]), host="127.0.0.1",
                port=int(sys.argv[2]), log_level="warning", access_log=False)
    """
)


def wrk(url: str, body: str, headers: dict[str, str]) -> tuple[float, float]:
    """(requests/s, p99 ms) of single-row POSTs at concurrency 8."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f"wrk.method = 'POST'\nwrk.body = {json.dumps(body)}\n")
        for key, value in {"Content-Type": "application/json", **headers}.items():
            script.write(f"wrk.headers[{json.dumps(key)}] = {json.dumps(value)}\n")
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(CONNECTIONS), "-d", f"{DURATION_S}s", "--latency", "-s", script.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)
    if "Non-2xx" in out:
        raise RuntimeError(f"errors during the load test of {url}:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
    return rate, float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wait_until_scores(url: str, body: str, headers: dict[str, str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(
                url, data=body.encode(), headers={"Content-Type": "application/json", **headers}
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(url)


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def main() -> None:
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    X, y = make_classification(n_samples=5000, n_features=20, random_state=0)
    X = X.astype(np.float32)
    forest = RandomForestClassifier(n_estimators=100, max_depth=10, random_state=0, n_jobs=1).fit(X, y)
    proto = to_onnx(forest, X[:1], options={"zipmap": False})
    row = json.dumps({"inputs": X[:1].tolist()})
    figures: list[tuple[str, str, str, str]] = []

    with tempfile.TemporaryDirectory(prefix="mlops-bench-endpoints-") as tmp:
        root = Path(tmp)
        ws = Workspace(root / "ws")
        ws.models.register(forest, "forest")
        ws.models.register(proto, "forest")
        sk_dir = ws.models.download("forest", 1, root / "sk")
        onnx_file = root / "forest.onnx"
        onnx_file.write_bytes(proto.SerializeToString())

        # in process
        import onnxruntime as ort

        session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
        name, out = session.get_inputs()[0].name, session.get_outputs()[0].name
        for rows in (1, 1000):
            batch = X[:rows]
            sk = statistics.median(_timed(lambda b=batch: forest.predict(b)) for _ in range(30))
            ox = statistics.median(_timed(lambda b=batch: session.run([out], {name: b})) for _ in range(30))
            figures.append(
                (
                    f"in process, {rows} row(s)",
                    f"ONNX {ox * 1e3:.3f} ms",
                    f"sklearn {sk * 1e3:.3f} ms",
                    f"{sk / ox:.0f}x faster",
                )
            )

        # ours: two deployments, 90/10, served in the endpoint's two worker processes (one per core)
        started = time.perf_counter()
        ep = ws.endpoints.create("bench", auth="none", instances=WORKERS)
        ep.deploy("blue", "forest:2")
        ep.deploy("green", "forest:2")
        ep.set_traffic({"blue": 90, "green": 10})
        wait_until_scores(ep.scoring_uri, row, {})
        ours_start = time.perf_counter() - started

        # bare Starlette + onnxruntime, one worker; measured in alternation with ours (this machine's speed drifts)
        port = free_port()
        bare = subprocess.Popen([sys.executable, "-c", BARE_APP, str(onnx_file), str(port)], start_new_session=True)
        ours_runs, bare_runs = [], []
        try:
            wait_until_scores(f"http://127.0.0.1:{port}/score", row, {})
            for _ in range(ROUNDS):
                ours_runs.append(wrk(ep.scoring_uri, row, {}))
                bare_runs.append(wrk(f"http://127.0.0.1:{port}/score", row, {}))
        finally:
            stop(bare)
            ep.delete()
        ours_rate, ours_p99 = (statistics.median(values) for values in zip(*ours_runs, strict=True))
        bare_rate, bare_p99 = (statistics.median(values) for values in zip(*bare_runs, strict=True))

        # mlflow models serve on the scikit-learn version
        serve_start, (serve_rate, serve_p99) = mlflow_serve(sk_dir, row)

        # a model that does not convert: a pyfunc wrapping the forest in custom Python (micro-batching)
        wrapped = root / "wrapped"
        _save_wrapped(forest, X, wrapped)
        ws.models.register(wrapped, "wrapped")
        ep = ws.endpoints.create("wrapped", auth="none")
        ep.deploy("blue", "wrapped:1")
        ep.set_traffic({"blue": 100})
        wait_until_scores(ep.scoring_uri, row, {})
        wrapped_rate, wrapped_p99 = wrk(ep.scoring_uri, row, {})
        ep.delete()
        _, (wrapped_serve_rate, _) = mlflow_serve(wrapped, row)

        auto = default_deploy(ws, forest, X, root, row)

    auto_rate, explicit_rate = auto["rate"], auto["explicit_rate"]
    figures += [
        (
            "pyfunc (no ONNX), micro-batching",
            f"{wrapped_rate:.0f} req/s",
            f"mlflow serve {wrapped_serve_rate:.0f} req/s",
            f"{wrapped_rate / wrapped_serve_rate:.1f}x (target >= 4x); p99 {wrapped_p99:.0f} ms",
        ),
        (
            f"throughput, 2 deployments 90/10, {WORKERS} workers",
            f"{ours_rate:.0f} req/s",
            f"mlflow serve {serve_rate:.0f} req/s",
            f"{ours_rate / serve_rate:.0f}x (target >= 50x)",
        ),
        (
            "throughput vs bare app",
            f"{ours_rate:.0f} req/s",
            f"bare onnx app {bare_rate:.0f} req/s",
            f"{ours_rate / bare_rate:.0%} (target >= 70%)",
        ),
        (
            "p99 latency",
            f"{ours_p99:.1f} ms",
            f"serve {serve_p99:.1f} ms / bare {bare_p99:.1f} ms",
            "lower than both" if ours_p99 < min(serve_p99, bare_p99) else "NOT lower than both",
        ),
        ("start to first /score", f"{ours_start:.2f} s", f"mlflow serve {serve_start:.2f} s", "target < 2 s"),
        (
            "default deploy: start to first /score",
            f"{auto['start']:.2f} s",
            f"register (+ conversion) {auto['register']:.1f} s",
            "target < 2 s",
        ),
        (
            "default deploy vs mlflow serve",
            f"{auto_rate:.0f} req/s",
            f"mlflow serve {serve_rate:.0f} req/s",
            f"{auto_rate / serve_rate:.0f}x (target >= 50x); p99 {auto['p99']:.1f} ms",
        ),
        (
            "default deploy vs explicit conversion",
            f"{auto_rate:.0f} req/s",
            f"convert_to_onnx first {explicit_rate:.0f} req/s",
            f"{auto_rate / explicit_rate:.2f}x (target >= 0.95x)",
        ),
    ]
    print(f"{'figure':34} | {'ours':18} | {'reference':36} | result")
    print("-" * 120)
    for figure, ours, reference, result in figures:
        print(f"{figure:34} | {ours:18} | {reference:36} | {result}")


def default_deploy(ws: Workspace, forest, X, root: Path, row: str) -> dict[str, float]:
    """A plain ``deploy`` of the forest saved with an input example (its conversion made when it was registered),
    measured against a deployment of the same forest converted by ``convert_to_onnx`` first (alternating
    rounds)."""
    import mlflow.sklearn

    from jupyter_mlops._mlflow import quiet
    from jupyter_mlops.deploy.onnx import convert_to_onnx

    example = root / "forest-example"
    with quiet("mlflow.sklearn"):
        mlflow.sklearn.save_model(forest, str(example), input_example=X[:5], serialization_format="cloudpickle")
    started = time.perf_counter()
    ws.models.register(example, "forest-auto")  # 1, and its conversion (proven on the input example): 2
    register_s = time.perf_counter() - started
    ws.models.register(forest, "forest-explicit")  # no sample: version 1 alone, converted explicitly below
    started = time.perf_counter()
    auto = ws.endpoints.create("auto", auth="none", instances=WORKERS)
    served = auto.deploy("blue", "forest-auto:1")
    auto.set_traffic({"blue": 100})
    wait_until_scores(auto.scoring_uri, row, {})
    start_s = time.perf_counter() - started
    if not served.serving.startswith("onnx"):
        raise RuntimeError(f"the default deploy does not serve ONNX: {served}")
    convert_to_onnx(ws, "forest-explicit:1", X[:100])
    explicit = ws.endpoints.create("explicit", auth="none", instances=WORKERS)
    explicit.deploy("blue", "forest-explicit:1")  # serves the conversion made above
    explicit.set_traffic({"blue": 100})
    wait_until_scores(explicit.scoring_uri, row, {})
    auto_runs, explicit_runs = [], []
    try:
        for _ in range(ROUNDS):
            auto_runs.append(wrk(auto.scoring_uri, row, {}))
            explicit_runs.append(wrk(explicit.scoring_uri, row, {}))
    finally:
        auto.delete()
        explicit.delete()
    rate, p99 = (statistics.median(values) for values in zip(*auto_runs, strict=True))
    explicit_rate = statistics.median(r for r, _ in explicit_runs)
    return {"start": start_s, "register": register_s, "rate": rate, "p99": p99, "explicit_rate": explicit_rate}


def mlflow_serve(model_dir: Path, row: str) -> tuple[float, tuple[float, float]]:
    """``mlflow models serve`` on a model folder: (seconds to the first answer, (req/s, p99 ms))."""
    port = free_port()
    started = time.perf_counter()
    serve = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "models",
            "serve",
            "-m",
            str(model_dir),
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"},  # its uvicorn
    )
    try:
        wait_until_scores(f"http://127.0.0.1:{port}/invocations", row, {})
        start_s = time.perf_counter() - started
        return start_s, wrk(f"http://127.0.0.1:{port}/invocations", row, {})
    finally:
        stop(serve)


def _save_wrapped(forest, X, path: Path) -> None:
    """An MLflow pyfunc model whose predict is custom Python around the forest: nothing ONNX can convert."""
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    class Wrapped(mlflow.pyfunc.PythonModel):
        def __init__(self, model) -> None:
            self.model = model

        def predict(self, context, model_input, params=None):
            import numpy as np

            values = np.asarray(model_input, dtype=np.float32)
            return [int(p) for p in self.model.predict(values)]

    mlflow.pyfunc.save_model(str(path), python_model=Wrapped(forest), signature=infer_signature(X[:5], [0] * 5))


def _timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
