"""Scale benchmark: how the cost of the everyday calls grows with the amount of work, in one run on this machine.

Run with ``.venv/bin/python bench/bench_scale.py [--quick] [--only registry,events,endpoints,pipelines]``.
Each curve prints every size beside the previous one with its growth factor (size ratio -> cost ratio) and a
verdict: "linear or better" when no step of the curve grows the cost more than the work (x1.25 allowed for this
machine's noise), else "worse than linear" with the reason found in the code path. The reference of every figure
is the same call at the previous size. Sizes (``--quick`` in brackets):

1. Registry: ``ws.models.list("stage=prod")`` (a tag held by 1 % of the versions) and ``ws.models.list()`` at
   1k, 10k and 100k model versions over 100 models [1k, 5k, 10k]; median of 3 calls (one call when it takes
   over 10 s). The versions are seeded straight into MLflow's SQLite registry of a fresh workspace (bulk inserts
   of its own ``SqlRegisteredModel``, ``SqlModelVersion``, ``SqlModelVersionTag`` rows, every column as
   ``SqlAlchemyStore.create_model_version`` fills it, four tags per version); registering 100k versions through
   the API would take far too long. Target: the filtered list of 100k versions under 1 s.
2. Event log: ``ws.events.tail(limit=100)`` at 10k, 100k and 1M events [1k, 10k, 100k], seeded in bulk into the
   metadata store's event table; median of 20 calls. Target: under 50 ms at 1M. Signed webhook delivery to a
   local receiver in another process (``bench_events``' receiver) of 10k and 100k events [1k, 10k], each with a
   pending delivery seeded in bulk: wall time and this process's CPU time (the CPU curve does not move with the
   machine's load); the 1M size is run only if the measured rate says it takes under 3 minutes.
   Target (``bench_events``'): at least 500 events/s.
3. One endpoint (2 worker processes) with 1, 5 and 10 ONNX deployments [1, 5], each of its own version of a small
   forest (30 trees, depth 8), traffic split evenly: req/s and p99 of single-row ``/score`` at concurrency 8
   (``wrk``, 5 s rounds), and the summed RSS of the endpoint's worker processes (psutil, else /proc). Needs
   ``wrk`` (``apt-get install wrk``); skipped without it. The endpoint is deleted at the end.
4. Pipelines of 5, 20 and 50 trivial notebook steps in a chain [5, 20]: plan time (``pipelines.validate``, median
   of 5), the first full run (information; one kernel per step) and a fully reused re-run (median of 3, no
   kernel started). A 50-step chain predicted to take over 4 minutes runs as independent steps with
   ``max_parallel=2`` instead, and says so.

Everything lives in a temporary folder removed at the end. The exit status is 1 when a target is missed (the
verdicts are findings, not targets); the load average at the start is printed, as others' work on this machine
changes every figure.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

PARTS = ("registry", "events", "endpoints", "pipelines")
NOISE = 1.25  # a step may grow the cost up to this much more than the work before it counts as worse than linear
MODELS = 100
PROD_EVERY = 100  # 1 % of the versions carry stage=prod
LIST_RUNS = 3
LONG_CALL_S = 10.0  # a list call slower than this is timed once (the 100k unfiltered list takes about a minute)
TAIL_RUNS = 20
TAIL_LIMIT = 100
CHUNK = 50_000
DELIVERY_BUDGET_S = 180  # a delivery size is run only when the measured rate says it fits in this
WRK_S = 5
CONNECTIONS = 8
WORKERS = 2
PLAN_RUNS = 5
REUSE_RUNS = 3
FIRST_RUN_BUDGET_S = 240  # a 50-step chain longer than this (predicted) runs as independent steps instead

LIST_TARGET_S = 1.0
TAIL_TARGET_S = 0.050
DELIVERY_TARGET = 500.0


@dataclass
class Curve:
    name: str
    points: list[tuple[int, float, str]] = field(default_factory=list)  # (work, cost, shown)
    why: str = ""  # printed when the curve grows worse than linear

    def add(self, work: int, cost: float, shown: str) -> None:
        self.points.append((work, cost, shown))
        print(f"    {self.name}: {work:,} -> {shown}", flush=True)

    def steps(self) -> list[tuple[float, float]]:
        return [(b[0] / a[0], b[1] / a[1]) for a, b in zip(self.points, self.points[1:], strict=False) if a[1] > 0]

    def linear(self) -> bool:
        return all(cost <= size * NOISE for size, cost in self.steps())


@dataclass
class Target:
    figure: str
    ours: str
    target: str
    ok: bool | None  # None: not measured at this size (--quick)


@dataclass
class Part:
    title: str
    unit: str  # what the work counts
    curves: list[Curve] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)


# -- formatting -------------------------------------------------------------------------------------------------
def seconds(value: float) -> str:
    if value < 1:
        return f"{value * 1000:.1f} ms"
    return f"{value:.2f} s"


def print_part(part: Part) -> None:
    print(f"\n{part.title}")
    width = max(len(c.name) for c in part.curves) if part.curves else 10
    print(f"  {'curve':{width}}  {part.unit:>10}  {'cost':>22}  {'vs previous size':28}  verdict")
    for curve in part.curves:
        previous = None
        for index, (work, cost, shown) in enumerate(curve.points):
            growth = "-"
            if previous is not None and previous[1] > 0:
                growth = f"x{work / previous[0]:g} work -> x{cost / previous[1]:.2f} cost"
            verdict = ""
            if index == len(curve.points) - 1 and len(curve.points) > 1:
                verdict = "linear or better" if curve.linear() else "worse than linear"
            label = curve.name if index == 0 else ""
            print(f"  {label:{width}}  {work:>10,}  {shown:>22}  {growth:28}  {verdict}".rstrip())
            previous = (work, cost)
        if len(curve.points) > 1 and not curve.linear():
            why = curve.why or "no per-item cost found on this code path; see the load average (a shared machine)"
            print(f"  {'':{width}}  why: {why}")
    for note in part.notes:
        print(f"  note: {note}")


# -- 1. registry --------------------------------------------------------------------------------------------------
def seed_versions(ws, start: int, stop: int) -> None:
    """Versions start..stop-1 (numbered over all models) straight into MLflow's registry tables, in bulk."""
    from mlflow.entities.model_registry.model_version_stages import STAGE_NONE
    from mlflow.entities.model_registry.model_version_status import ModelVersionStatus
    from mlflow.store.model_registry.dbmodels.models import (
        SqlModelVersion,
        SqlModelVersionTag,
        SqlRegisteredModel,
        SqlRegisteredModelAlias,
    )
    from mlflow.utils.workspace_utils import DEFAULT_WORKSPACE_NAME
    from sqlalchemy import insert, update

    store = ws.client._get_registry_client().store
    now = int(time.time() * 1000)
    with store.ManagedSessionMaker() as session:
        if start == 0:
            names = [f"model-{m:03d}" for m in range(MODELS)]
            session.execute(
                insert(SqlRegisteredModel),
                [
                    {
                        "workspace": DEFAULT_WORKSPACE_NAME,
                        "name": n,
                        "creation_time": now,
                        "last_updated_time": now,
                        "description": None,
                    }
                    for n in names
                ],
            )
        for low in range(start, stop, CHUNK):
            versions, tags = [], []
            for i in range(low, min(stop, low + CHUNK)):
                name, number = f"model-{i % MODELS:03d}", i // MODELS + 1
                created = now - (stop - i)  # distinct, increasing with the version
                source = f"file:///tmp/registry/{name}/{number}"
                versions.append(
                    {
                        "workspace": DEFAULT_WORKSPACE_NAME,
                        "name": name,
                        "version": number,
                        "creation_time": created,
                        "last_updated_time": created,
                        "description": None,
                        "user_id": None,
                        "current_stage": STAGE_NONE,
                        "source": source,
                        "storage_location": source,
                        "run_id": None,
                        "run_link": None,
                        "status": ModelVersionStatus.to_string(ModelVersionStatus.READY),
                        "status_message": None,
                    }
                )
                for key, value in (
                    ("stage", "prod" if i % PROD_EVERY == PROD_EVERY - 1 else "dev"),
                    ("team", f"team-{i % 7}"),
                    ("mlops.created_by", "bench"),
                    ("mlops.flavor", "onnx"),
                ):
                    tags.append(
                        {
                            "workspace": DEFAULT_WORKSPACE_NAME,
                            "name": name,
                            "version": number,
                            "key": key,
                            "value": value,
                        }
                    )
            session.execute(insert(SqlModelVersion), versions)
            session.execute(insert(SqlModelVersionTag), tags)
        session.execute(update(SqlRegisteredModel).values(last_updated_time=now))
        if start == 0:
            session.execute(
                insert(SqlRegisteredModelAlias),
                [
                    {"workspace": DEFAULT_WORKSPACE_NAME, "name": f"model-{m:03d}", "alias": "champion", "version": 1}
                    for m in range(MODELS)
                ],
            )


def bench_registry(root: Path, sizes: list[int]) -> Part:
    from jupyter_mlops import Workspace

    part = Part(f"1. registry: ws.models.list over {MODELS} models (median of {LIST_RUNS})", "versions")
    filtered = Curve(
        "list('stage=prod'), 1 % match",
        why="MLflow's SqlAlchemyStore.search_model_versions reads every 'stage' tag row twice (tag values are not "
        "indexed; the subqueryload of the tags repeats the query), and at 100k versions mlflow.db outgrows "
        "SQLite's default 2 MB page cache (a 200 MB cache takes about a third off)",
    )
    everything = Curve(
        "list(), every version",
        why="registry.ModelRegistry.list (_all_pages) reads MLflow's search_model_versions in OFFSET pages of "
        "10,000: each page sorts every version again, twice (the query and its tags' subqueryload), so the SQL "
        "grows as pages x versions (0.7 s for the first page at 100k, 1.3 s for the last); CPython's GC over "
        "the growing result adds ~40 %",
    )
    part.curves += [filtered, everything]
    ws = Workspace(root / "registry")
    ws.client.search_registered_models(max_results=1)  # MLflow creates its schema here, once
    seeded = 0
    for size in sizes:
        started = time.perf_counter()
        seed_versions(ws, seeded, size)
        seed_s, seeded = time.perf_counter() - started, size
        print(f"  seeded {size:,} versions ({seed_s:.1f} s)", flush=True)
        ws.models.list("stage=prod")  # warm
        for curve, flt, expected in ((filtered, "stage=prod", size // PROD_EVERY), (everything, None, size)):
            times: list[float] = []
            while len(times) < LIST_RUNS and sum(times) < LONG_CALL_S:  # one call only when it takes long
                t = time.perf_counter()
                found = ws.models.list(flt)
                times.append(time.perf_counter() - t)
                assert len(found) == expected, (flt, len(found), expected)
            median = statistics.median(times)
            curve.add(size, median, seconds(median) + ("" if len(times) == LIST_RUNS else f" ({len(times)} call)"))
    at = 100_000
    point = next((p for p in filtered.points if p[0] == at), None)
    part.targets.append(
        Target(
            f"registry: list('stage=prod') over {at:,} versions",
            seconds(point[1]) if point else "not measured (--quick)",
            f"< {LIST_TARGET_S:g} s",
            None if point is None else point[1] < LIST_TARGET_S,
        )
    )
    return part


# -- 2. events ------------------------------------------------------------------------------------------------------
def seed_events(ws, start: int, stop: int, subscription_id: int | None = None) -> None:
    """Events with seq start+1..stop in the event log (and, for a subscription, a pending delivery of each)."""
    from sqlalchemy import insert

    from jupyter_mlops.events.envelope import dumps
    from jupyter_mlops.store.events import DeliveryRecord, EventRecord

    types = ("model.registered", "run.completed", "model.alias_changed", "deployment.created")
    base = datetime.now(timezone.utc) - timedelta(microseconds=stop - start + 1)
    source = ws.events.source
    for low in range(start, stop, CHUNK):
        events, deliveries = [], []
        for i in range(low, min(stop, low + CHUNK)):
            seq, moment = i + 1, base + timedelta(microseconds=i - start)
            name, version = f"model-{i % MODELS:03d}", i // MODELS + 1
            events.append(
                {
                    "seq": seq,
                    "id": str(uuid.uuid4()),
                    "type": types[i % len(types)],
                    "source": source,
                    "subject": f"models/{name}/versions/{version}",
                    "time": moment,
                    "data": dumps({"modelName": name, "modelVersion": str(version), "modelTags": {"stage": "dev"}}),
                }
            )
            if subscription_id is not None:
                deliveries.append(
                    {
                        "subscription_id": subscription_id,
                        "event_seq": seq,
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": moment,
                    }
                )
        with ws.store.session() as session:
            session.execute(insert(EventRecord), events)
            if deliveries:
                session.execute(insert(DeliveryRecord), deliveries)


def bench_tail(root: Path, sizes: list[int], part: Part) -> None:
    from jupyter_mlops import Workspace

    curve = Curve(
        f"tail(limit={TAIL_LIMIT})",
        why="events.Events.tail should read the newest rows by the seq primary key; look for a query that "
        "no longer uses it (ORDER BY seq DESC LIMIT)",
    )
    part.curves.append(curve)
    ws = Workspace(root / "event-log")
    seeded = 0
    for size in sizes:
        started = time.perf_counter()
        seed_events(ws, seeded, size)
        seed_s, seeded = time.perf_counter() - started, size
        print(f"  seeded {size:,} events ({seed_s:.1f} s)", flush=True)
        ws.events.tail(limit=TAIL_LIMIT)  # warm
        times = []
        for _ in range(TAIL_RUNS):
            t = time.perf_counter()
            newest = ws.events.tail(limit=TAIL_LIMIT)
            times.append(time.perf_counter() - t)
        assert len(newest) == TAIL_LIMIT and newest[-1].seq == size, (len(newest), newest[-1].seq)
        median = statistics.median(times)
        curve.add(size, median, seconds(median))
    at = 1_000_000
    point = next((p for p in curve.points if p[0] == at), None)
    part.targets.append(
        Target(
            f"events: tail(limit={TAIL_LIMIT}) of {at:,} events",
            seconds(point[1]) if point else "not measured (--quick)",
            f"< {TAIL_TARGET_S * 1000:g} ms",
            None if point is None else point[1] < TAIL_TARGET_S,
        )
    )


def _receiver() -> tuple[subprocess.Popen, int]:
    from bench_events import RECEIVER

    from tests.services import free_port

    port = free_port()
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read()
            return receiver, port
        except OSError:
            time.sleep(0.05)
    receiver.kill()
    raise RuntimeError("the webhook receiver did not start")


def deliver_once(root: Path, n: int) -> float:
    """Seconds to deliver n logged events (a pending delivery each) to a fresh receiver, signed."""
    from sqlalchemy import select

    from jupyter_mlops import Workspace
    from jupyter_mlops.store.events import SubscriptionRecord

    receiver, port = _receiver()
    try:
        ws = Workspace(root / f"deliver-{n}")
        ws.events.subscribe("bench", webhook=f"http://127.0.0.1:{port}/hook")
        ws.events.deliverer.wake = lambda: None  # no background thread: delivery is timed alone, below
        with ws.store.session() as session:
            sub_id = session.scalar(select(SubscriptionRecord.id).where(SubscriptionRecord.name == "bench"))
        started = time.perf_counter()
        seed_events(ws, 0, n, subscription_id=sub_id)
        print(f"  seeded {n:,} events with a pending delivery each ({time.perf_counter() - started:.1f} s)", flush=True)
        started, cpu = time.perf_counter(), time.process_time()
        left = ws.events.deliver()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        received = int(urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read())
        assert left == 0 and received == n, (left, received, n)
        return elapsed, cpu
    finally:
        receiver.kill()
        receiver.wait()


def bench_delivery(root: Path, sizes: list[int], part: Part) -> None:
    wall = Curve("webhook delivery (wall time)")
    cpu = Curve(
        "webhook delivery (CPU of this process)",
        why="only the per-batch queries of events.delivery.Deliverer (_claim, _heads, _record) see the whole queue",
    )
    part.curves += [wall, cpu]
    rate = None
    for size in sizes:
        if rate is not None and size / rate > DELIVERY_BUDGET_S:
            part.notes.append(
                f"{size:,} deliveries not run: at the measured {rate:,.0f} events/s they would take "
                f"{size / rate / 60:.0f} minutes"
            )
            break
        elapsed, used = deliver_once(root, size)
        rate = size / elapsed
        wall.add(size, elapsed, f"{seconds(elapsed)} ({rate:,.0f}/s)")
        cpu.add(size, used, seconds(used))
    if not wall.linear() and cpu.linear():
        wall.why = (
            "the delivering process's CPU time grows linearly (below): the extra wall time is waiting, i.e. this "
            "machine's load (the receiver and others' work share its 2 cores), not the code path"
        )
    if rate is not None:
        part.targets.append(
            Target(
                f"events: signed webhook delivery of {wall.points[-1][0]:,}",
                f"{rate:,.0f} events/s",
                f">= {DELIVERY_TARGET:g}/s",
                rate >= DELIVERY_TARGET,
            )
        )


def bench_events(root: Path, tail_sizes: list[int], delivery_sizes: list[int]) -> Part:
    part = Part("2. event log: tail (median of 20) and signed webhook delivery", "events")
    bench_tail(root, tail_sizes, part)
    bench_delivery(root, delivery_sizes, part)
    return part


# -- 3. endpoints ---------------------------------------------------------------------------------------------------
def wrk(url: str, body: str) -> tuple[float, float]:
    """(requests/s, p99 ms) of single-row POSTs at concurrency 8 for WRK_S seconds."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f"wrk.method = 'POST'\nwrk.body = {json.dumps(body)}\n")
        script.write("wrk.headers['Content-Type'] = 'application/json'\n")
    try:
        out = subprocess.run(
            ["wrk", "-t", "2", "-c", str(CONNECTIONS), "-d", f"{WRK_S}s", "--latency", "-s", script.name, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    if "Non-2xx" in out:
        raise RuntimeError(f"errors during the load test of {url}:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
    return rate, float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def worker_rss_mb(ws, endpoint: str) -> tuple[float, int]:
    """Summed resident memory of the endpoint's worker processes (and their children), and how many."""
    from jupyter_mlops.store.endpoints import workers

    pids = [w.pid for w in workers(ws.store, endpoint) if w.pid]
    try:
        import psutil

        procs = []
        for pid in pids:
            p = psutil.Process(pid)
            procs += [p, *p.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs) / 2**20, len(procs)
    except ImportError:
        total = 0
        for pid in pids:
            status = Path(f"/proc/{pid}/status").read_text()
            total += int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024
        return total / 2**20, len(pids)


def even_split(names: list[str]) -> dict[str, int]:
    share, extra = divmod(100, len(names))
    return {n: share + (1 if i < extra else 0) for i, n in enumerate(names)}


def bench_endpoints(root: Path, sizes: list[int]) -> Part:
    import numpy as np
    from bench_endpoints import wait_until_scores
    from skl2onnx import to_onnx
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    from jupyter_mlops import Workspace

    part = Part(
        f"3. endpoint: {WORKERS} workers, ONNX deployments with traffic split evenly, concurrency {CONNECTIONS}, "
        f"{WRK_S} s rounds",
        "deployments",
    )
    if shutil.which("wrk") is None:
        part.notes.append("skipped: wrk is needed (apt-get install wrk)")
        return part
    per_request = Curve("time per request (1/req/s)")
    p99 = Curve("p99 latency")
    memory = Curve("worker RSS (sum)")
    part.curves += [per_request, p99, memory]
    X, y = make_classification(n_samples=2000, n_features=20, random_state=0)
    X = X.astype(np.float32)
    forest = RandomForestClassifier(n_estimators=30, max_depth=8, random_state=0, n_jobs=1).fit(X, y)
    proto = to_onnx(forest, X[:1], options={"zipmap": False})
    row = json.dumps({"inputs": X[:1].tolist()})
    ws = Workspace(root / "endpoints")
    for _ in range(max(sizes)):  # one version per deployment: the workers share the scorer of one version
        ws.models.register(proto, "forest")
    ep = ws.endpoints.create("scale", auth="none", instances=WORKERS)
    try:
        deployed: list[str] = []
        for size in sizes:
            started = time.perf_counter()
            while len(deployed) < size:
                name = f"d{len(deployed)}"
                ep.deploy(name, f"forest:{len(deployed) + 1}")
                deployed.append(name)
            ep.set_traffic(even_split(deployed))
            wait_until_scores(ep.scoring_uri, row, {})
            print(f"  {size} deployment(s) serving ({time.perf_counter() - started:.1f} s)", flush=True)
            rate, tail = wrk(ep.scoring_uri, row)
            rss, processes = worker_rss_mb(ws, "scale")
            per_request.add(size, 1 / rate, f"{1000 / rate:.3f} ms ({rate:,.0f} req/s)")
            p99.add(size, tail, f"{tail:.1f} ms")
            memory.add(size, rss, f"{rss:.0f} MB ({processes} proc)")
    finally:
        ep.delete()
    part.notes.append(
        "each deployment serves its own version of the same forest (30 trees, depth 8); the work is the number "
        "of deployments: a request should cost the same whatever it is, memory grows by one ONNX session per "
        "deployment in each worker (deploy.router.Router._scorer shares one per model version)"
    )
    return part


# -- 4. pipelines ---------------------------------------------------------------------------------------------------
def _notebook(path: Path, code: str) -> None:
    cells = [
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "i = 0\nsrc = None\nout = 'out.txt'"},
        {"cell_type": "code", "metadata": {}, "source": code},
    ]
    for index, cell in enumerate(cells):
        cell.update(id=f"c{index}", execution_count=None, outputs=[])
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    document = {"cells": cells, "metadata": {"kernelspec": kernelspec}, "nbformat": 4, "nbformat_minor": 5}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))


def write_pipeline(folder: Path, steps: int, chain: bool) -> Path:
    """A pipeline of ``steps`` trivial notebook steps: a chain (each reads the previous output) or independent.
    Each step passes its own ``i`` and writes it, so no two steps share a cache key."""
    _notebook(folder / "step.ipynb", "open(out, 'w').write(str(i))")
    lines = [f"name: scale-{steps}-{'chain' if chain else 'independent'}", "steps:"]
    for i in range(steps):
        inputs = f", inputs: {{src: s{i - 1}.out}}" if chain and i else ""
        outputs = f"outputs: {{out: out/s{i}.txt}}"
        lines.append(f"  s{i}: {{notebook: step.ipynb, parameters: {{i: {i}}}{inputs}, {outputs}}}")
    spec = folder / "pipeline.yaml"
    spec.write_text("\n".join(lines) + "\n")
    return spec


def bench_pipelines(root: Path, sizes: list[int]) -> Part:
    from jupyter_mlops import Workspace, pipelines
    from jupyter_mlops.pipelines import kernels

    logging.getLogger("papermill").setLevel(logging.ERROR)
    part = Part("4. pipelines of trivial notebook steps", "steps")
    plan = Curve(
        f"plan (validate, median of {PLAN_RUNS})",
        why="pipelines.spec.load has no per-step quadratic work: ~90 % is two parses of the text with PyYAML's "
        "pure-Python loader (yaml.safe_load, and yaml.compose in _Positions); the extra is this machine's load",
    )
    first = Curve("first full run (info)")
    reuse = Curve(f"fully reused re-run (median of {REUSE_RUNS})")
    part.curves += [plan, first, reuse]
    for size in sizes:  # plans first, in a process not yet busy with runs (their kernels shut down on threads)
        spec = write_pipeline(root / f"plan-{size}", size, True)
        pipelines.validate(spec)
        times = []
        for _ in range(PLAN_RUNS):
            t = time.perf_counter()
            loaded = pipelines.validate(spec)
            times.append(time.perf_counter() - t)
        assert len(loaded.steps) == size
        plan.add(size, statistics.median(times), seconds(statistics.median(times)))
    ws = Workspace(root / "pipelines")
    warm = ws.pipelines.run(write_pipeline(root / "warm-up", 1, True))  # first kernel, imports, the stores
    assert warm.status == "FINISHED", warm.summary()
    chain = True
    per_step: float | None = None
    for size in sizes:
        if chain and per_step is not None and per_step * size > FIRST_RUN_BUDGET_S:
            chain = False
            part.notes.append(
                f"{size} steps: a chain would take ~{per_step * size:.0f} s, so these are independent steps "
                "run with max_parallel=2 (not comparable one to one with the chains above)"
            )
        spec = write_pipeline(root / f"pipeline-{size}", size, chain)
        options = {} if chain else {"max_parallel": 2}
        t = time.perf_counter()
        result = ws.pipelines.run(spec, **options)
        first_s = time.perf_counter() - t
        assert result.status == "FINISHED", result.summary()
        per_step = first_s / size
        first.add(size, first_s, seconds(first_s))
        times, before = [], kernels.kernels_started()
        for _ in range(REUSE_RUNS):
            t = time.perf_counter()
            again = ws.pipelines.run(spec, **options)
            times.append(time.perf_counter() - t)
            assert {s.status for s in again.steps.values()} == {"reused"}, again.summary()
        assert kernels.kernels_started() == before, "a fully reused re-run started a kernel"
        reuse.add(size, statistics.median(times), seconds(statistics.median(times)))
    part.notes.append(
        "steps form a chain (each reads the previous step's output); the first full run starts one "
        "kernel per step on this machine's 2 cores, a fully reused re-run none"
    )
    return part


# -- main -----------------------------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes for a fast look")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts: {','.join(PARTS)}")
    args = parser.parse_args()
    only = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(only) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; parts: {', '.join(PARTS)}")
    if args.quick:
        sizes = {
            "registry": [1_000, 5_000, 10_000],
            "tail": [1_000, 10_000, 100_000],
            "delivery": [1_000, 10_000],
            "endpoints": [1, 5],
            "pipelines": [5, 20],
        }
    else:
        sizes = {
            "registry": [1_000, 10_000, 100_000],
            "tail": [10_000, 100_000, 1_000_000],
            "delivery": [10_000, 100_000, 1_000_000],
            "endpoints": [1, 5, 10],
            "pipelines": [5, 20, 50],
        }

    started = time.perf_counter()
    import mlflow  # noqa: F401  (configures its loggers on import: quiet them after)

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    load = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    print(
        f"jupyter-mlops scale benchmark{' (--quick)' if args.quick else ''}  (python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores, load average {load} at the start; parts: {', '.join(only)})",
        flush=True,
    )
    runs: dict[str, Callable[[Path], Part]] = {
        "registry": lambda root: bench_registry(root, sizes["registry"]),
        "events": lambda root: bench_events(root, sizes["tail"], sizes["delivery"]),
        "endpoints": lambda root: bench_endpoints(root, sizes["endpoints"]),
        "pipelines": lambda root: bench_pipelines(root, sizes["pipelines"]),
    }
    parts: list[Part] = []
    scratch = Path(tempfile.mkdtemp(prefix="mlops-bench-scale-"))
    try:
        for name in PARTS:
            if name in only:
                print(f"\n[{name}] ...", flush=True)
                t = time.perf_counter()
                parts.append(runs[name](scratch / name))
                print(f"[{name}] {time.perf_counter() - t:.0f} s", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print("\n" + "=" * 110)
    for part in parts:
        print_part(part)
    targets = [t for p in parts for t in p.targets]
    if targets:
        print("\ntargets")
        width = max(len(t.figure) for t in targets)
        for t in targets:
            ok = "n/a" if t.ok is None else ("ok" if t.ok else "MISSED")
            print(f"  {t.figure:{width}}  {t.ours:>24}  {t.target:10}  {ok}")
    elapsed = time.perf_counter() - started
    print(
        f"\nfinished in {elapsed / 60:.1f} min ({elapsed:.0f} s); load average now "
        f"{' / '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    return 1 if any(t.ok is False for t in targets) else 0


if __name__ == "__main__":
    sys.exit(main())
