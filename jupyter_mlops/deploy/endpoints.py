"""The control plane of online endpoints: records in the metadata store, router processes, Azure's traffic rules.

Each endpoint is one or more router worker processes (see ``router.py``) sharing a port, each recorded with its PID;
a deployment with its own environment or a Docker target is a process of its own (see ``isolated.py``). The
records say what should run; ``list``/``get`` reconcile them with what does, and restart what crashed. Changes
(deploy, traffic, mirror) are written to the store and return once every worker has applied them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from jupyter_mlops.deploy import isolated
from jupyter_mlops.deploy.metrics import MULTIPROCESS_ENV
from jupyter_mlops.events import envelope
from jupyter_mlops.exceptions import BackendUnavailable, Conflict, EndpointError, InvalidInput, MlopsError, NotFound
from jupyter_mlops.processes import alive, free_port, stop_process_group
from jupyter_mlops.records import Record

if TYPE_CHECKING:
    from jupyter_mlops.store.endpoints import EndpointRecord, EndpointWorker
    from jupyter_mlops.workspace import Workspace

ACTIVE = ("creating", "updating", "active")
START_TIMEOUT_S = 60.0
APPLY_TIMEOUT_S = 120.0
UNRECORDED_AFTER_S = isolated.READY_TIMEOUT_S + 60  # a launch record older than a start can take: its starter died
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class DeploymentInfo(Record):
    endpoint: str
    name: str
    model: str
    status: str
    traffic: int
    mirror: int
    error: str | None
    created_at: datetime | None
    requested: str | None = None  # what deploy() was asked for, when it serves its ONNX conversion instead
    runs_in: str = "router"  # router (in the endpoint's workers) | venv (its environment's process) | docker
    environment: str | None = None
    table_columns: ClassVar[tuple[str, ...]] = (
        "endpoint",
        "name",
        "model",
        "status",
        "traffic",
        "mirror",
        "runs_in",
        "error",
    )


@dataclass(frozen=True)
class EndpointInfo(Record):
    name: str
    status: str
    scoring_uri: str | None
    auth: str
    pid: int | None  # of the first worker
    traffic: dict[str, int]
    mirror: dict[str, int]
    deployments: list[DeploymentInfo]
    note: str | None = None
    instances: int = 1  # worker processes
    table_columns: ClassVar[tuple[str, ...]] = (
        "name",
        "status",
        "scoring_uri",
        "instances",
        "traffic",
        "mirror",
        "note",
    )


class Endpoint:
    """A handle on one endpoint; every method reads the store, so it is never stale."""

    def __init__(self, service: Endpoints, name: str) -> None:
        self.service = service
        self.name = name

    def __repr__(self) -> str:
        return f"Endpoint({self.name!r}, scoring_uri={self.scoring_uri!r})"

    @property
    def info(self) -> EndpointInfo:
        return self.service.show(self.name)

    @property
    def scoring_uri(self) -> str | None:
        return self.info.scoring_uri

    @property
    def key(self) -> str | None:
        return self.service._record(self.name).key

    def deploy(self, deployment: str, model: str, **kwargs: Any) -> DeploymentInfo:
        return self.service.deploy(self.name, deployment, model, **kwargs)

    def set_traffic(self, traffic: dict[str, int]) -> EndpointInfo:
        return self.service.set_traffic(self.name, traffic)

    def set_mirror(self, mirror: dict[str, int]) -> EndpointInfo:
        return self.service.set_mirror(self.name, mirror)

    def invoke(self, data: Any, deployment: str | None = None) -> Any:
        return self.service.invoke(self.name, data, deployment=deployment)

    def logs(self, deployment: str | None = None, lines: int = 100) -> str:
        return self.service.logs(self.name, deployment, lines=lines)

    def delete(self) -> None:
        self.service.delete(self.name)


class Endpoints:
    """Online endpoints of one workspace."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    # -- create / delete ------------------------------------------------------------------------------------------
    def create(
        self, name: str, *, auth: str = "key", host: str = "127.0.0.1", port: int | None = None, instances: int = 1
    ) -> Endpoint:
        """Record the endpoint, then start its ``instances`` worker processes; returns once they answer."""
        from jupyter_mlops.store.endpoints import EndpointRecord

        if not _NAME.match(name):
            raise InvalidInput(f"{name!r} is not a valid endpoint name: lower-case letters, digits and '-'.")
        if auth not in ("key", "none"):
            raise InvalidInput(f"auth must be 'key' or 'none', not {auth!r}.")
        _check_instances(instances)
        from sqlalchemy.exc import IntegrityError

        try:
            with self.ws.store.session() as session:  # the record first: no process ever runs without one
                session.add(
                    EndpointRecord(
                        name=name,
                        auth=auth,
                        key=secrets.token_urlsafe(32) if auth == "key" else None,
                        host=host,
                        port=port or free_port(host),
                        status="creating",
                        instances=instances,
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"An endpoint named {name!r} exists; delete it first or choose another name.") from exc
        shutil.rmtree(self._metrics_dir(name), ignore_errors=True)
        try:
            self._scale(name, instances)
        except BaseException:
            self.delete(name)
            raise
        self.ws.events.emit("endpoint.created", f"endpoints/{name}", {"endpointName": name, "auth": auth})
        return Endpoint(self, name)

    def delete(self, name: str) -> None:
        """Stop the workers and deployment processes and remove the endpoint; deployments stay in the history."""
        from sqlalchemy import delete, select, update

        from jupyter_mlops.store.endpoints import EndpointWorker
        from jupyter_mlops.store.schema import Deployment

        record = self._record(name)
        for worker in self._workers(name):
            stop_process_group(worker.pid)
        with self.ws.store.session() as session:
            rows = session.scalars(select(Deployment).where(Deployment.endpoint == name)).all()
        for row in rows:
            launch = _launch(row)
            if launch is not None and row.status != "deleted":
                isolated.stop(launch)
        self._stop_unrecorded(name, older_than_s=0)
        with self.ws.store.session() as session:
            session.execute(update(Deployment).where(Deployment.endpoint == name).values(status="deleted"))
            session.execute(delete(EndpointWorker).where(EndpointWorker.endpoint == name))
            session.delete(session.merge(record))
        self.ws.events.emit("endpoint.deleted", f"endpoints/{name}", {"endpointName": name})

    # -- read ---------------------------------------------------------------------------------------------------
    def get(self, name: str) -> Endpoint:
        self.show(name)  # raises NotFound, reconciles
        return Endpoint(self, name)

    def show(self, name: str) -> EndpointInfo:
        return self._info(self._reconcile(self._record(name)))

    def list(self) -> list[EndpointInfo]:
        from sqlalchemy import select

        from jupyter_mlops.store.endpoints import EndpointRecord

        with self.ws.store.session() as session:
            records = session.scalars(select(EndpointRecord).order_by(EndpointRecord.name)).all()
        return [self._info(self._reconcile(r)) for r in records]

    def keys(self, name: str) -> dict[str, str | None]:
        return {"name": name, "key": self._record(name).key}

    # -- change -------------------------------------------------------------------------------------------------
    def deploy(
        self,
        endpoint: str,
        deployment: str,
        model: str,
        *,
        scoring_script: str | os.PathLike[str] | None = None,
        environment: str | os.PathLike[str] | None = None,
        target: str = "local",
        instances: int = 1,
        collect: bool = True,
        onnx: bool = True,
        request_timeout_s: float = 60.0,
        max_body_bytes: int = 10 * 1024 * 1024,
    ) -> DeploymentInfo:
        """Add (0% traffic until set) or replace deployment ``deployment`` with ``model`` (``churn:3``,
        ``models:/churn/3``, ``models:/churn@champion``); returns once the endpoint serves it.

        Served inside the endpoint's workers, unless it names its own ``environment`` (a registered name or an
        ``envs/NAME.yaml`` spec: run in that virtualenv) or ``target="docker"`` (run as a container): then it is a
        process of its own that the workers forward to. ``instances`` is the number of worker processes serving it
        (in the endpoint's workers: the endpoint runs at least that many)."""
        from sqlalchemy import delete, select

        from jupyter_mlops.store.endpoints import DeploymentLaunch
        from jupyter_mlops.store.schema import Deployment

        if not _NAME.match(deployment):
            raise InvalidInput(f"{deployment!r} is not a valid deployment name: lower-case letters, digits and '-'.")
        if target not in ("local", "docker"):
            raise InvalidInput(f"target must be 'local' or 'docker', not {target!r}.")
        _check_instances(instances)
        if request_timeout_s <= 0 or max_body_bytes <= 0:
            raise InvalidInput("request_timeout_s and max_body_bytes must be positive.")
        script = str(Path(scoring_script).resolve()) if scoring_script else None
        if script and not Path(script).is_file():
            raise InvalidInput(f"The scoring script {script} does not exist.")
        self._record(endpoint)
        built = None
        if environment is not None:
            from jupyter_mlops.environments import Environments

            built = Environments(self.ws).built(environment)
        name, version = _model_ref(model)
        requested = self.ws.models.get(name, version)
        record = requested
        onnx_usable = built is None or _has_package(built.lock, "onnxruntime")
        if onnx and onnx_usable and not scoring_script:  # serve a proven ONNX conversion when there is one
            from jupyter_mlops.deploy.onnx import converted_version

            record = converted_version(self.ws, requested.name, requested.version) or requested
        options: dict[str, Any] = {
            "collect": collect,
            "prefer_onnx": onnx and onnx_usable,
            "requested": f"{requested.name}:{requested.version}",
            "request_timeout_s": request_timeout_s,
            "max_body_bytes": max_body_bytes,
            "instances": instances,
        }
        launch, launched = None, None
        if built is not None or target == "docker":
            options["environment"] = f"{built.name}:{built.short_version}" if built else None
            launch, launched = self._launch_isolated(
                endpoint, deployment, record, script, built, target, instances, options
            )
            options["upstream"] = {"url": launch.url, "key": launch.key}
            options["process"] = launch.to_options()
        with self.ws.store.session() as session:
            row = session.scalar(
                select(Deployment).where(Deployment.endpoint == endpoint, Deployment.name == deployment)
            )
            replacing = row is not None and row.status in ACTIVE
            previous = _launch(row) if replacing else None
            if row is None:
                row = Deployment(endpoint=endpoint, name=deployment)
                session.add(row)
            row.model_name, row.model_version, row.model_uri = record.name, record.version, record.source
            row.scoring_script, row.options, row.error = script, json.dumps(options), None
            row.status = "updating" if replacing else "creating"
            if launched is not None:  # the deployment records its process from now on
                session.execute(delete(DeploymentLaunch).where(DeploymentLaunch.id == launched))
        if launch is None:
            self._scale(endpoint, max(instances, self._record(endpoint).instances))
        self._apply(endpoint)
        if previous is not None:  # the replaced process: stopped once no worker forwards to it
            isolated.stop(previous)
        info = next(d for d in self.show(endpoint).deployments if d.name == deployment)
        if info.status == "failed":
            self.ws.events.emit(
                "deployment.failed",
                f"endpoints/{endpoint}/deployments/{deployment}",
                {"endpointName": endpoint, "deploymentName": deployment, "model": info.model, "error": info.error},
            )
            raise EndpointError(f"Deployment {endpoint}/{deployment} of {info.model} failed to load: {info.error}")
        self.ws.events.emit(
            "deployment.created",
            f"endpoints/{endpoint}/deployments/{deployment}",
            envelope.model_deployed(
                f"{endpoint}/{deployment}", "local", [info.model], {}, endpointName=endpoint, deploymentName=deployment
            ),
        )
        return info

    def set_traffic(self, endpoint: str, traffic: dict[str, int]) -> EndpointInfo:
        """Azure's rules: integer percentages over existing deployments summing to 0 or 100; not the mirror."""
        return self.set_split(endpoint, traffic=traffic)

    def set_mirror(self, endpoint: str, mirror: dict[str, int]) -> EndpointInfo:
        """One mirror deployment at most, at most 50%, and not one that receives live traffic."""
        return self.set_split(endpoint, mirror=mirror)

    def set_split(
        self, endpoint: str, *, traffic: dict[str, int] | None = None, mirror: dict[str, int] | None = None
    ) -> EndpointInfo:
        """Set traffic and/or mirror (None: unchanged) in one change: the rules are checked on the result, so a
        deployment moves from the mirror to live traffic (or back) in one step, and a refusal changes nothing."""
        info = self.show(endpoint)
        names = {d.name for d in info.deployments}
        new_traffic = _percentages(traffic, names, "traffic") if traffic is not None else info.traffic
        new_mirror = (
            {n: p for n, p in _percentages(mirror, names, "mirror").items() if p} if mirror is not None else info.mirror
        )
        total = sum(new_traffic.values())
        if total not in (0, 100):
            raise InvalidInput(f"Traffic percentages must sum to 0 or 100, not {total}: {new_traffic}.")
        mirrored = {n: p for n, p in new_mirror.items() if p > 0}
        if len(mirrored) > 1:
            raise InvalidInput(f"At most one deployment can be mirrored; got {sorted(mirrored)}.")
        for name, percent in mirrored.items():
            if percent > 50:
                raise InvalidInput(f"At most 50% of traffic can be mirrored; got {percent}% for {name}.")
            if new_traffic.get(name, 0) > 0:
                raise InvalidInput(
                    f"{name} would get live traffic ({new_traffic[name]}%) and mirrored traffic ({percent}%): "
                    "a deployment is either live or mirrored."
                )
        changes = {"traffic": new_traffic} if traffic is not None else {}
        if mirror is not None:
            changes["mirror"] = new_mirror
        if changes:
            self._update(endpoint, **changes)
        if traffic is not None:
            data = {"endpointName": endpoint, "traffic": new_traffic}
            self.ws.events.emit("deployment.traffic_changed", f"endpoints/{endpoint}", data)
        return self.show(endpoint)

    # -- use ----------------------------------------------------------------------------------------------------
    def invoke(self, endpoint: str, data: Any, *, deployment: str | None = None, timeout: float = 60) -> Any:
        """POST ``data`` (a dict/list in MLflow's JSON formats, a DataFrame, or a JSON string) to ``/score``."""
        record = self._record(endpoint)
        if hasattr(data, "to_dict") and hasattr(data, "columns"):
            data = {"dataframe_split": data.to_dict(orient="split", index=False)}
        body = data.encode() if isinstance(data, str) else json.dumps(data).encode()
        headers = {"Content-Type": "application/json"}
        if record.key:
            headers["Authorization"] = f"Bearer {record.key}"
        if deployment:
            headers["mlops-model-deployment"] = deployment
        request = urllib.request.Request(_uri(record) + "/score", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            message = exc.read().decode(errors="replace")
            with contextlib.suppress(ValueError, KeyError, TypeError):
                message = json.loads(message)["message"]
            error = {400: InvalidInput, 404: NotFound}.get(exc.code, EndpointError)
            raise error(f"{endpoint} answered {exc.code}: {message}") from exc
        except urllib.error.URLError as exc:
            raise BackendUnavailable(f"Endpoint {endpoint} does not answer at {_uri(record)}: {exc.reason}") from exc

    def logs(self, endpoint: str, deployment: str | None = None, *, lines: int = 100) -> str:
        """The deployment's own log (its loading, failures, and its process or container output), or the
        endpoint's router log when no deployment is named."""
        if deployment is None:
            self._record(endpoint)
            return _tail(self._log_path(endpoint), lines)
        from sqlalchemy import select

        from jupyter_mlops.store.schema import Deployment

        with self.ws.store.session() as session:
            row = session.scalar(
                select(Deployment).where(Deployment.endpoint == endpoint, Deployment.name == deployment)
            )
        if row is None:
            names = [d.name for d in self.show(endpoint).deployments]
            raise NotFound(f"No deployment {deployment!r} in {endpoint}; deployments: {', '.join(names) or 'none'}.")
        launch = _launch(row)
        if launch is not None and launch.kind == "docker":
            return isolated.tail(launch, lines)
        from jupyter_mlops.deploy.router import deployment_log_path

        return _tail(deployment_log_path(self.ws, endpoint, deployment), lines)

    # -- internals ----------------------------------------------------------------------------------------------
    def _record(self, name: str) -> EndpointRecord:
        from sqlalchemy import select

        from jupyter_mlops.store.endpoints import EndpointRecord

        with self.ws.store.session() as session:
            record = session.scalar(select(EndpointRecord).where(EndpointRecord.name == name))
            if record is None:
                names = session.scalars(select(EndpointRecord.name)).all()
                raise NotFound(f"No endpoint named {name!r}; endpoints: {', '.join(names) or 'none'}.", names=names)
            return record

    def _workers(self, name: str) -> list[EndpointWorker]:
        from sqlalchemy import select

        from jupyter_mlops.store.endpoints import EndpointWorker

        with self.ws.store.session() as session:
            return list(
                session.scalars(
                    select(EndpointWorker).where(EndpointWorker.endpoint == name).order_by(EndpointWorker.slot)
                ).all()
            )

    def _log_path(self, name: str) -> Path:
        return self.ws.root / "logs" / "endpoints" / f"{name}.log"

    def _metrics_dir(self, name: str) -> Path:
        return self.ws.root / "serving" / name / "metrics"

    def _scale(self, name: str, instances: int) -> None:
        """Run at least ``instances`` workers: start the missing slots and wait until they serve."""
        from sqlalchemy import update

        from jupyter_mlops.store.endpoints import EndpointRecord

        with self.ws.store.session() as session:
            session.execute(update(EndpointRecord).where(EndpointRecord.name == name).values(instances=instances))
        workers = {w.slot: w for w in self._workers(name)}
        missing = [slot for slot in range(instances) if slot not in workers or not alive(workers[slot].pid)]
        self._start_workers(name, missing)
        self._set_status(name, "running")

    def _start_workers(self, name: str, slots: list[int]) -> None:
        """Start workers (side by side), detached from this process, and wait until they serve the configuration."""
        started = {slot: self._spawn_worker(name, slot) for slot in slots}
        record = self._record(name)
        deadline = time.monotonic() + START_TIMEOUT_S
        while started and time.monotonic() < deadline:
            for slot, process in list(started.items()):
                if process.poll() is not None:
                    for other in started.values():
                        stop_process_group(other.pid)
                    raise EndpointError(f"Worker {slot} of {name} exited at start: {self.logs(name, lines=20)}")
            applied = {w.slot for w in self._workers(name) if w.applied_version > 0}
            if applied >= set(started) and _answers(_uri(record) + "/health"):
                return
            time.sleep(0.05)
        for process in started.values():
            stop_process_group(process.pid)
        if started:
            raise EndpointError(f"The workers of {name} did not become ready within {START_TIMEOUT_S:.0f} s.")

    def _spawn_worker(self, name: str, slot: int) -> subprocess.Popen[bytes]:
        """Record worker ``slot`` and start its process; returns without waiting."""
        from sqlalchemy import delete

        from jupyter_mlops.store.endpoints import EndpointWorker

        record = self._record(name)
        log_path = self._log_path(name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        metrics = self._metrics_dir(name)
        metrics.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "jupyter_mlops.deploy.router",
            "--endpoint",
            name,
            "--slot",
            str(slot),
            "--workspace",
            str(self.ws.root),
            "--metadata-uri",
            self.ws.metadata_uri,
            "--host",
            record.host,
            "--port",
            str(record.port),
        ]
        if not self.ws.is_local:
            command += ["--tracking-uri", self.ws.tracking_uri]
        with self.ws.store.session() as session:  # the row first: no worker runs without one
            session.execute(delete(EndpointWorker).where(EndpointWorker.endpoint == name, EndpointWorker.slot == slot))
            session.add(EndpointWorker(endpoint=name, slot=slot, pid=None, applied_version=0))
        with open(log_path, "a") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a kernel restart does not stop it
                env={**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", MULTIPROCESS_ENV: str(metrics)},
            )
        self._set_worker(name, slot, pid=process.pid)
        return process

    def _set_worker(self, name: str, slot: int, **values: Any) -> None:
        from sqlalchemy import update

        from jupyter_mlops.store.endpoints import EndpointWorker

        with self.ws.store.session() as session:
            session.execute(
                update(EndpointWorker)
                .where(EndpointWorker.endpoint == name, EndpointWorker.slot == slot)
                .values(**values)
            )

    def _launch_isolated(
        self,
        endpoint: str,
        deployment: str,
        record: Any,
        script: str | None,
        built: Any,
        target: str,
        instances: int,
        options: dict[str, Any],
    ) -> tuple[isolated.Launch, int]:
        """Start the deployment's own process (its environment's venv, or a container) and wait until it serves;
        returns it with the launch record the caller deletes when it records the process."""
        from jupyter_mlops.deploy.router import deployment_log_path

        log = deployment_log_path(self.ws, endpoint, deployment)
        port = free_port("127.0.0.1")
        if target == "docker":
            environment = f"{built.name}:{built.version}" if built is not None else None
            launch = isolated.docker_launch(
                self.ws,
                f"{record.name}:{record.version}",
                endpoint=endpoint,
                name=deployment,
                port=port,
                log=log,
                scoring_script=script,
                environment=environment,
                workers=instances,
                options=options,
            )
        else:
            from jupyter_mlops.environments.build import venv_python

            folder = self.ws.root / "serving" / endpoint / f"{deployment}-{record.name}-{record.version}"
            if not folder.exists():
                self.ws.models.download(record.name, record.version, folder)
            python = str(venv_python(Path(built.venv_path)))
            launch = isolated.venv_launch(
                self.ws,
                python,
                model_dir=folder,
                name=deployment,
                port=port,
                log=log,
                scoring_script=script,
                workers=instances,
                options=options,
            )
        return self._start_recorded(endpoint, deployment, launch)

    def _start_recorded(self, endpoint: str, deployment: str, launch: isolated.Launch) -> tuple[isolated.Launch, int]:
        """``isolated.start`` under a launch record written before the process starts: if this process dies before
        the deployment records it, the next reconciliation finds the record and stops what it started."""
        from sqlalchemy import delete, update

        from jupyter_mlops.store.endpoints import DeploymentLaunch

        with self.ws.store.session() as session:
            entry = DeploymentLaunch(endpoint=endpoint, deployment=deployment, launch=json.dumps(launch.to_options()))
            session.add(entry)
            session.flush()
            launched = entry.id

        def record(started: isolated.Launch) -> None:
            with self.ws.store.session() as session:
                values = {"launch": json.dumps(started.to_options())}
                session.execute(update(DeploymentLaunch).where(DeploymentLaunch.id == launched).values(**values))

        try:
            return isolated.start(self.ws, launch, on_spawn=record), launched
        except BaseException:  # start() stopped it
            with self.ws.store.session() as session:
                session.execute(delete(DeploymentLaunch).where(DeploymentLaunch.id == launched))
            raise

    def _stop_unrecorded(self, endpoint: str, *, older_than_s: float) -> list[str]:
        """Stop deployment processes that were started but never recorded (their starter died meanwhile)."""
        from datetime import timedelta

        from sqlalchemy import select

        from jupyter_mlops.store.endpoints import DeploymentLaunch
        from jupyter_mlops.store.schema import as_utc, utcnow

        cutoff = utcnow() - timedelta(seconds=older_than_s)
        with self.ws.store.session() as session:
            entries = session.scalars(select(DeploymentLaunch).where(DeploymentLaunch.endpoint == endpoint)).all()
            stale = [e for e in entries if as_utc(e.started_at) <= cutoff]
            for entry in stale:
                isolated.stop(isolated.Launch(**json.loads(entry.launch)))
                session.delete(entry)
        return [f"a process of deployment {e.deployment} was started but never recorded: stopped" for e in stale]

    def _reconcile(self, record: EndpointRecord) -> EndpointRecord:
        """Workers and deployment processes that should run but do not are reported and restarted."""
        if record.status not in ("running", "crashed"):
            return record
        notes = []
        workers = {w.slot: w for w in self._workers(record.name)}
        for slot in range(record.instances):
            worker = workers.get(slot)
            if worker is not None and alive(worker.pid):
                continue
            self._set_status(record.name, "crashed")
            try:
                self._start_workers(record.name, [slot])
                notes.append(f"worker {slot} had crashed and was restarted")
            except MlopsError as exc:
                notes.append(f"worker {slot} crashed and could not be restarted: {exc}")
        notes += self._reconcile_deployments(record.name)
        if any("could not" in note for note in notes):
            record = self._record(record.name)
        else:
            self._set_status(record.name, "running")
            record = self._record(record.name)
        if notes:
            record.note = "; ".join(notes)  # type: ignore[attr-defined]
        return record

    def _reconcile_deployments(self, endpoint: str) -> list[str]:
        from sqlalchemy import delete, select

        from jupyter_mlops.store.endpoints import DeploymentLaunch
        from jupyter_mlops.store.schema import Deployment

        with self.ws.store.session() as session:
            rows = session.scalars(
                select(Deployment).where(Deployment.endpoint == endpoint, Deployment.status.in_(ACTIVE))
            ).all()
        notes = self._stop_unrecorded(endpoint, older_than_s=UNRECORDED_AFTER_S)
        for row in rows:
            launch = _launch(row)
            if launch is None or isolated.running(launch):
                continue
            try:  # same port and key: the workers need no change
                restarted, launched = self._start_recorded(endpoint, row.name, launch)
            except MlopsError as exc:
                notes.append(f"deployment {row.name} stopped and could not be restarted: {exc}")
                continue
            with self.ws.store.session() as session:
                stored = session.get(Deployment, row.id)
                options = json.loads(stored.options or "{}")
                options["process"] = restarted.to_options()
                stored.options = json.dumps(options)
                session.execute(delete(DeploymentLaunch).where(DeploymentLaunch.id == launched))
            notes.append(f"deployment {row.name} had stopped and was restarted")
        return notes

    def _set_status(self, name: str, status: str) -> None:
        from sqlalchemy import update

        from jupyter_mlops.store.endpoints import EndpointRecord

        with self.ws.store.session() as session:
            session.execute(update(EndpointRecord).where(EndpointRecord.name == name).values(status=status))

    def _update(self, endpoint: str, **values: dict[str, int]) -> None:
        from sqlalchemy import update

        from jupyter_mlops.store.endpoints import EndpointRecord

        with self.ws.store.session() as session:
            session.execute(
                update(EndpointRecord)
                .where(EndpointRecord.name == endpoint)
                .values(
                    config_version=EndpointRecord.config_version + 1, **{k: json.dumps(v) for k, v in values.items()}
                )
            )
        self._apply(endpoint, bump=False)

    def _apply(self, endpoint: str, *, bump: bool = True) -> None:
        """Ask the workers to apply the stored configuration and wait until every one has."""
        from sqlalchemy import update

        from jupyter_mlops.store.endpoints import EndpointRecord

        if bump:
            with self.ws.store.session() as session:
                session.execute(
                    update(EndpointRecord)
                    .where(EndpointRecord.name == endpoint)
                    .values(config_version=EndpointRecord.config_version + 1)
                )
        record = self._record(endpoint)
        target = record.config_version
        _signal_change(self.ws, endpoint, target)
        deadline = time.monotonic() + APPLY_TIMEOUT_S
        while time.monotonic() < deadline:
            workers = [w for w in self._workers(endpoint) if w.slot < record.instances]
            if workers and all(w.applied_version >= target for w in workers):
                return
            dead = [w.slot for w in workers if not alive(w.pid)]
            if dead or not workers:
                raise EndpointError(
                    f"Worker {dead[0] if dead else 0} of {endpoint} is not running: {self.logs(endpoint, lines=20)}"
                )
            time.sleep(0.05)
        raise EndpointError(f"The workers of {endpoint} did not apply the change within {APPLY_TIMEOUT_S:.0f} s.")

    def _info(self, record: EndpointRecord) -> EndpointInfo:
        from sqlalchemy import select

        from jupyter_mlops.store.schema import Deployment

        traffic, mirror = json.loads(record.traffic), json.loads(record.mirror)
        with self.ws.store.session() as session:
            rows = session.scalars(
                select(Deployment)
                .where(Deployment.endpoint == record.name, Deployment.status != "deleted")
                .order_by(Deployment.name)
            ).all()
        deployments = []
        for row in rows:
            options = json.loads(row.options or "{}")
            launch = _launch(row)
            deployments.append(
                DeploymentInfo(
                    endpoint=record.name,
                    name=row.name,
                    model=f"{row.model_name}:{row.model_version}",
                    status=row.status,
                    traffic=traffic.get(row.name, 0),
                    mirror=mirror.get(row.name, 0),
                    error=row.error,
                    created_at=row.created_at,
                    requested=options.get("requested"),
                    runs_in=launch.kind if launch else "router",
                    environment=options.get("environment"),
                )
            )
        workers = self._workers(record.name)
        return EndpointInfo(
            name=record.name,
            status=record.status,
            scoring_uri=_uri(record) + "/score" if record.port else None,
            auth=record.auth,
            pid=workers[0].pid if workers else None,
            traffic=traffic,
            mirror=mirror,
            deployments=deployments,
            note=getattr(record, "note", None),
            instances=record.instances,
        )


def _model_ref(model: str) -> tuple[str, str]:
    if model.startswith("models:/"):
        rest = model[len("models:/") :]
        if "@" in rest:
            return tuple(rest.split("@", 1))  # type: ignore[return-value]
        name, _, version = rest.partition("/")
        return name, version or "latest"
    name, sep, version = model.partition(":")
    if not sep or not name or not version:
        raise InvalidInput(
            f"Name the model as NAME:VERSION, models:/NAME/VERSION or models:/NAME@ALIAS, not {model!r}."
        )
    return name, version


def _percentages(values: dict[str, Any], names: set[str], what: str) -> dict[str, int]:
    unknown = sorted(set(values) - names)
    if unknown:
        raise InvalidInput(f"Unknown deployment(s) {', '.join(unknown)} in {what}; deployments: {sorted(names)}.")
    clean = {}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
            raise InvalidInput(f"{what} percentages are integers from 0 to 100; {name} has {value!r}.")
        clean[name] = value
    return clean


def _uri(record: EndpointRecord) -> str:
    return f"http://{record.host}:{record.port}"


def _check_instances(instances: int) -> None:
    if isinstance(instances, bool) or not isinstance(instances, int) or not 1 <= instances <= 64:
        raise InvalidInput(f"instances is a number of worker processes from 1 to 64, not {instances!r}.")


def _launch(row: Any) -> isolated.Launch | None:
    """How the deployment's own process was started, when it has one."""
    process = json.loads(row.options or "{}").get("process") if row is not None else None
    return isolated.Launch(**process) if process else None


def _has_package(lock: str | None, name: str) -> bool:
    return any(line.lower().startswith(f"{name}==") for line in (lock or "").splitlines())


def _signal_change(ws: Workspace, endpoint: str, version: int) -> None:
    """Tell the workers to re-read the configuration now (they also re-read it every few seconds)."""
    from jupyter_mlops.deploy.router import config_signal_path

    path = config_signal_path(ws, endpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(f".{os.getpid()}.tmp")
    staging.write_text(str(version))
    os.replace(staging, path)


def _tail(path: Path, lines: int) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False
