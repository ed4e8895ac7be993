"""The control plane of online endpoints: the verbs (create, deploy, traffic, invoke, ...) and what they return.

Each endpoint is one or more router worker processes (``router.py``) sharing a port; a deployment with its own
environment or a Docker target is a process of its own (``isolated.py``). The records (``store/endpoints.py``) say
what should run; the supervisor (``supervision.py``) makes it so: each endpoint's supervisor process restarts what
dies within a second (``watch.py``), ``show``/``list`` reconcile the records with what runs too, and ``restarts``
says what was restarted and why. Changes (deploy, traffic, mirror) are checked first (``traffic.py``: Azure's
rules), written to the store, and return once every worker has applied them.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from jupyter_mlops.deploy import client, isolated, series
from jupyter_mlops.deploy import resources as limits
from jupyter_mlops.deploy import traffic as rules
from jupyter_mlops.deploy.series import LivePoint
from jupyter_mlops.deploy.supervision import (
    APPLY_TIMEOUT_S,
    START_TIMEOUT_S,
    UNRECORDED_AFTER_S,
    Supervisor,
    launch_of,
    port_in_use,
    tail,
)
from jupyter_mlops.events import envelope
from jupyter_mlops.exceptions import EndpointError, InvalidInput, NotFound
from jupyter_mlops.names import check_name
from jupyter_mlops.processes import free_port, stop_process_group
from jupyter_mlops.records import Record
from jupyter_mlops.refs import ModelRef
from jupyter_mlops.store import endpoints as q
from jupyter_mlops.store.schema import as_utc

if TYPE_CHECKING:
    import pandas as pd

    from jupyter_mlops.deploy.shadow import ShadowReport
    from jupyter_mlops.rollouts import Rollout
    from jupyter_mlops.store.endpoints import EndpointRecord, EndpointWorker
    from jupyter_mlops.workspace import Workspace

ACTIVE = ("creating", "updating", "active")  # deployment states that should serve


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
    serving: str | None = None  # "onnx: ..." or "pyfunc: why not ONNX" (auto_onnx.py), "script: ..."
    resources: dict[str, Any] | None = None  # what it was given: {"cpu": 2, "memory": "2Gi", "gpu": 0}
    provider: str | None = None  # where it infers: CUDAExecutionProvider, CPUExecutionProvider, cuda or cpu
    limits: str | None = None  # how its target applied them (threads, CPU affinity, memory limit, ...)
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
class RestartInfo(Record):
    """A process of an endpoint found dead: which, why (as far as it can be told), and what replaced it."""

    endpoint: str
    kind: str  # worker | deployment | supervisor | launch (started, never recorded: stopped)
    target: str  # the worker's slot or the deployment's name
    pid: int | None
    new_pid: int | None
    reason: str
    restarted: bool
    by: str  # supervisor | list/show | worker N | create
    start_failures: int  # deaths at start in a row, this one included
    delay_s: float  # the back-off before this restart
    at: datetime
    table_columns: ClassVar[tuple[str, ...]] = ("at", "kind", "target", "reason", "by", "new_pid")


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

    def shadow_report(self, deployment: str) -> ShadowReport:
        """How the mirror ``deployment``'s answers compare with the live ones (agreement, differences, its own
        errors and latency), summed over every worker; see ``deploy/shadow.py``."""
        from jupyter_mlops.deploy.shadow import report

        return report(self.info, deployment)

    def logs(self, deployment: str | None = None, lines: int = 100) -> str:
        return self.service.logs(self.name, deployment, lines=lines)

    # The rollout verbs of ``ws.rollouts`` (rollouts/__init__.py) on this endpoint: ep.rollout("green", ...)
    def rollout(self, deployment: str, **options: Any) -> Rollout:
        """Start a rollout of ``deployment``; returns at once (options: see ``ws.rollouts.start``)."""
        return self.service.ws.rollouts.start(self.name, deployment, **options)

    def rollout_status(self) -> Rollout:
        return self.service.ws.rollouts.status(self.name)

    def pause(self) -> Rollout:
        """Hold the rollout at its current step."""
        return self.service.ws.rollouts.pause(self.name)

    def resume(self) -> Rollout:
        return self.service.ws.rollouts.resume(self.name)

    def abort(self) -> Rollout:
        """Roll back: traffic to the split from before the rollout, mirror off."""
        return self.service.ws.rollouts.abort(self.name)

    def history(self, since: datetime | None = None) -> pd.DataFrame:
        return self.service.history(self.name, since=since)

    def delete(self) -> None:
        self.service.delete(self.name)


class Endpoints:
    """Online endpoints of one workspace."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.supervisor = Supervisor(ws)

    # -- create / delete ------------------------------------------------------------------------------------------
    def create(
        self, name: str, *, auth: str = "key", host: str = "127.0.0.1", port: int | None = None, instances: int = 1
    ) -> Endpoint:
        """Record the endpoint, then start its supervisor and its ``instances`` worker processes; returns once they
        answer. A port in use is refused before anything is recorded or started."""
        check_name(name, "endpoint")
        if auth not in ("key", "none"):
            raise InvalidInput(f"auth must be 'key' or 'none', not {auth!r}.")
        _check_instances(instances)
        if port is not None and port_in_use(host, port):
            raise EndpointError(f"Port {port} on {host} is in use: endpoint {name} was not created (nothing started).")
        q.add_endpoint(  # the record first: no process ever runs without one
            self.ws.store,
            name=name,
            auth=auth,
            key=secrets.token_urlsafe(32) if auth == "key" else None,
            host=host,
            port=port or free_port(host),
            status="creating",
            instances=instances,
        )
        shutil.rmtree(self.ws.layout.metrics(name), ignore_errors=True)  # an earlier endpoint of that name's
        supervisor = None
        try:
            supervisor = self.supervisor.start_supervisor(name)  # it starts while the workers do
            self.supervisor.scale(name, instances)
            self.supervisor.wait_supervisor(name, supervisor)
        except BaseException:
            self.delete(name)
            if supervisor is not None and supervisor.poll() is None:  # started, not yet recorded: still ours
                stop_process_group(supervisor.pid)
            raise
        self.ws.events.emit("endpoint.created", f"endpoints/{name}", {"endpointName": name, "auth": auth})
        return Endpoint(self, name)

    def delete(self, name: str) -> None:
        """Stop the supervisor, the workers and deployment processes and remove the endpoint; deployments stay in
        the history. Marked "deleting" first: from then on nobody restarts its processes."""
        self._record(name)
        q.update_endpoint(self.ws.store, name, status="deleting")
        self.supervisor.stop_endpoint(name)
        q.remove_endpoint(self.ws.store, name)
        self.ws.events.emit("endpoint.deleted", f"endpoints/{name}", {"endpointName": name})

    # -- read ---------------------------------------------------------------------------------------------------
    def get(self, name: str) -> Endpoint:
        self.show(name)  # raises NotFound, reconciles
        return Endpoint(self, name)

    def show(self, name: str) -> EndpointInfo:
        return self._info(self.supervisor.reconcile(self._record(name)))

    def list(self) -> list[EndpointInfo]:
        return [self._info(self.supervisor.reconcile(r)) for r in q.all_endpoints(self.ws.store)]

    def restarts(self, name: str) -> list[RestartInfo]:
        """Every process of endpoint ``name`` found dead (by its supervisor, a worker or ``list``/``show``), oldest
        first."""
        self._record(name)
        return [
            RestartInfo(
                endpoint=e.endpoint,
                kind=e.kind,
                target=e.target,
                pid=e.pid,
                new_pid=e.new_pid,
                reason=e.reason,
                restarted=e.restarted,
                by=e.by,
                start_failures=e.start_failures,
                delay_s=e.delay_s,
                at=e.at,
            )
            for e in q.supervision_log(self.ws.store, name)
        ]

    def keys(self, name: str) -> dict[str, str | None]:
        return {"name": name, "key": self._record(name).key}

    def history(self, name: str, *, since: datetime | None = None) -> pd.DataFrame:
        """The live figures of endpoint ``name`` per deployment and interval (``deploy.series``), oldest first: time,
        requests, errors, error and request rates, p50/p99 in ms, traffic and mirror shares."""
        self._record(name)
        return series.frame(self.points(name, since=since))

    def points(self, name: str, *, since: datetime | None = None) -> list[LivePoint]:
        """The same figures as records (what REST serves)."""
        self._record(name)
        return series.points(self.ws, name, since=since)

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
        sample: Any = None,
        resources: Mapping[str, Any] | None = None,
    ) -> DeploymentInfo:
        """Add (0% traffic until set) or replace deployment ``deployment`` with ``model`` (``churn:3``,
        ``models:/churn/3``, ``models:/churn@champion``); returns once the endpoint serves it.

        A scikit-learn version is served by its proven ONNX conversion unless ``onnx=False``: the one made when it
        was registered with a sample or by ``convert_to_onnx``, else one made now, after the pickled model serves,
        proven on ``sample`` (a DataFrame or array) or the sample stored with the version, then switched to in
        place (``auto_onnx.py``); the deployment's ``serving`` says which it serves and why.

        Served inside the endpoint's workers, unless it names its own ``environment`` (a registered name or an
        ``envs/NAME.yaml`` spec: run in that virtualenv) or ``target="docker"`` (run as a container): then it is a
        process of its own that the workers forward to. ``instances`` is the number of worker processes serving it
        (in the endpoint's workers: the endpoint runs at least that many).

        ``resources`` (``{"cpu": 2, "memory": "2Gi", "gpu": 0}``, per instance) are applied as far as the target
        allows (``resources.py``); a GPU this machine cannot give is refused, unless ``gpu="prefer"``."""
        check_name(deployment, "deployment")
        if target not in ("local", "docker"):
            raise InvalidInput(f"target must be 'local' or 'docker', not {target!r}.")
        _check_instances(instances)
        asked = limits.parse(resources)  # refused before anything is recorded or started
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
        ref = ModelRef.parse(model)
        requested = self.ws.models.get(ref.name, ref.selector)
        onnx_usable = built is None or _has_package(built.lock, "onnxruntime")
        from jupyter_mlops.deploy.auto_onnx import resolve  # its proven ONNX conversion, or why not

        resolution = resolve(
            self.ws,
            requested,
            endpoint=endpoint,
            deployment=deployment,
            onnx=onnx,
            usable=onnx_usable,
            script=bool(scoring_script),
            own_process=built is not None or target == "docker",
            sample=sample,
        )
        record = resolution.record
        runs_in = "docker" if target == "docker" else "venv" if built is not None else "router"
        placement, given = limits.plan(
            asked,
            runs_in=runs_in,
            onnx=str(resolution.options.get("serving", "")).startswith("onnx"),
            lock=built.lock if built is not None else None,
            key=f"{endpoint}/{deployment}",
        )
        options: dict[str, Any] = {
            "collect": collect,
            "prefer_onnx": onnx and onnx_usable,
            "requested": f"{requested.name}:{requested.version}",
            "request_timeout_s": request_timeout_s,
            "max_body_bytes": max_body_bytes,
            "instances": instances,
            "resources": given,
            **resolution.options,
        }
        launch, launched = None, None
        if built is not None or target == "docker":
            options["environment"] = f"{built.name}:{built.short_version}" if built else None
            launch, launched = self.supervisor.launch(
                endpoint, deployment, record, script, built, target, instances, options
            )
            options["upstream"] = {"url": launch.url, "key": launch.key}
            options["process"] = launch.to_options()
        try:
            with self.ws.models.guard(record.name) as session:  # a delete of the version comes before or after
                self.ws.models.get(record.name, record.version)  # not deleted meanwhile
                replaced = q.save_deployment(  # with a process: the deployment records it from now on
                    session,
                    endpoint,
                    deployment,
                    launched=launched,
                    model_name=record.name,
                    model_version=record.version,
                    model_uri=record.source,
                    scoring_script=script,
                    options=json.dumps(options),
                    resources=json.dumps(asked.asked()),
                    provider=placement.provider,
                )
        except BaseException:
            if launch is not None and launched is not None:  # never recorded: nothing of it is left running
                isolated.stop(launch)
                q.remove_launch(self.ws.store, launched)
            raise
        previous = launch_of(replaced)
        if launch is None:
            self.supervisor.scale(endpoint, max(instances, self._record(endpoint).instances))
        self.supervisor.apply(endpoint)
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
        new_traffic, new_mirror = rules.split(names, (info.traffic, info.mirror), traffic, mirror)
        changes = {"traffic": new_traffic} if traffic is not None else {}
        if mirror is not None:
            changes["mirror"] = new_mirror
        if changes:
            self.supervisor.apply(endpoint, **changes)
        if traffic is not None:
            data = {"endpointName": endpoint, "traffic": new_traffic}
            self.ws.events.emit("deployment.traffic_changed", f"endpoints/{endpoint}", data)
        return self.show(endpoint)

    # -- use ----------------------------------------------------------------------------------------------------
    def invoke(self, endpoint: str, data: Any, *, deployment: str | None = None, timeout: float = 60) -> Any:
        """POST ``data`` (a dict/list in MLflow's JSON formats, a DataFrame, or a JSON string) to ``/score``."""
        record = self._record(endpoint)
        return client.score(record.url, data, endpoint=endpoint, key=record.key, deployment=deployment, timeout=timeout)

    def logs(self, endpoint: str, deployment: str | None = None, *, lines: int = 100) -> str:
        """The deployment's own log (its loading, failures, and its process or container output), or the
        endpoint's router log when no deployment is named."""
        if deployment is None:
            self._record(endpoint)
            return tail(self.ws.layout.router_log(endpoint), lines)
        row = q.get_deployment(self.ws.store, endpoint, deployment)
        if row is None:
            names = [d.name for d in self.show(endpoint).deployments]
            raise NotFound(f"No deployment {deployment!r} in {endpoint}; deployments: {', '.join(names) or 'none'}.")
        launch = launch_of(row.options)
        if launch is not None and launch.kind == "docker":
            return isolated.tail(launch, lines)
        return tail(self.ws.layout.deployment_log(endpoint, deployment), lines)

    # -- records ------------------------------------------------------------------------------------------------
    def _record(self, name: str) -> EndpointRecord:
        return q.get_endpoint(self.ws.store, name)

    def _workers(self, name: str) -> list[EndpointWorker]:
        return q.workers(self.ws.store, name)

    def _info(self, record: EndpointRecord) -> EndpointInfo:
        traffic, mirror = json.loads(record.traffic), json.loads(record.mirror)
        deployments = []
        for row in q.deployments(self.ws.store, record.name):
            options = json.loads(row.options or "{}")
            launch = launch_of(row.options)
            deployments.append(
                DeploymentInfo(
                    endpoint=record.name,
                    name=row.name,
                    model=f"{row.model_name}:{row.model_version}",
                    status=row.status,
                    traffic=traffic.get(row.name, 0),
                    mirror=mirror.get(row.name, 0),
                    error=row.error,
                    created_at=as_utc(row.created_at) if row.created_at else None,
                    requested=options.get("requested"),
                    runs_in=launch.kind if launch else "router",
                    environment=options.get("environment"),
                    serving=options.get("serving"),
                    resources=json.loads(row.resources) if row.resources else None,
                    provider=row.provider,
                    limits=limits.limits_text(options.get("resources"), launch.kind if launch else "router"),
                )
            )
        workers = self._workers(record.name)
        return EndpointInfo(
            name=record.name,
            status=record.status,
            scoring_uri=record.url + "/score" if record.port else None,
            auth=record.auth,
            pid=workers[0].pid if workers else None,
            traffic=traffic,
            mirror=mirror,
            deployments=deployments,
            note=getattr(record, "note", None),
            instances=record.instances,
        )


def _check_instances(instances: int) -> None:
    if isinstance(instances, bool) or not isinstance(instances, int) or not 1 <= instances <= 64:
        raise InvalidInput(f"instances is a number of worker processes from 1 to 64, not {instances!r}.")


def _has_package(lock: str | None, name: str) -> bool:
    return any(line.lower().startswith(f"{name}==") for line in (lock or "").splitlines())


__all__ = [
    "ACTIVE",
    "APPLY_TIMEOUT_S",
    "START_TIMEOUT_S",
    "UNRECORDED_AFTER_S",
    "DeploymentInfo",
    "Endpoint",
    "EndpointInfo",
    "Endpoints",
    "RestartInfo",
]
