"""The control plane of online endpoints: records in the metadata store, router processes, Azure's traffic rules.

Each endpoint is a router process (see ``router.py``) recorded with its PID and port. The record says what should
run; ``list``/``get`` reconcile it with what does, and restart a router that crashed. Changes (deploy, traffic,
mirror) are written to the store and return once the router has applied them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from jupyter_mlops.events import envelope
from jupyter_mlops.exceptions import BackendUnavailable, Conflict, InvalidInput, MlopsError, NotFound
from jupyter_mlops.records import Record

if TYPE_CHECKING:
    from jupyter_mlops.store.endpoints import EndpointRecord
    from jupyter_mlops.workspace import Workspace

ACTIVE = ("creating", "updating", "active")
START_TIMEOUT_S = 60.0
APPLY_TIMEOUT_S = 120.0
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
    table_columns: ClassVar[tuple[str, ...]] = ("endpoint", "name", "model", "status", "traffic", "mirror", "error")


@dataclass(frozen=True)
class EndpointInfo(Record):
    name: str
    status: str
    scoring_uri: str | None
    auth: str
    pid: int | None
    traffic: dict[str, int]
    mirror: dict[str, int]
    deployments: list[DeploymentInfo]
    note: str | None = None
    table_columns: ClassVar[tuple[str, ...]] = ("name", "status", "scoring_uri", "traffic", "mirror", "note")


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
    def create(self, name: str, *, auth: str = "key", host: str = "127.0.0.1", port: int | None = None) -> Endpoint:
        from jupyter_mlops.store.endpoints import EndpointRecord

        if not _NAME.match(name):
            raise InvalidInput(f"{name!r} is not a valid endpoint name: lower-case letters, digits and '-'.")
        if auth not in ("key", "none"):
            raise InvalidInput(f"auth must be 'key' or 'none', not {auth!r}.")
        from sqlalchemy.exc import IntegrityError

        try:
            with self.ws.store.session() as session:  # the record first: no process ever runs without one
                session.add(
                    EndpointRecord(
                        name=name,
                        auth=auth,
                        key=secrets.token_urlsafe(32) if auth == "key" else None,
                        host=host,
                        port=port or _free_port(host),
                        status="creating",
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"An endpoint named {name!r} exists; delete it first or choose another name.") from exc
        try:
            self._start(name)
        except BaseException:
            self.delete(name)
            raise
        self.ws.events.emit("endpoint.created", f"endpoints/{name}", {"endpointName": name, "auth": auth})
        return Endpoint(self, name)

    def delete(self, name: str) -> None:
        """Stop the router and remove the endpoint; its deployments stay in the history as deleted."""
        from sqlalchemy import update

        from jupyter_mlops.store.schema import Deployment

        record = self._record(name)
        _stop(record.pid)
        with self.ws.store.session() as session:
            session.execute(update(Deployment).where(Deployment.endpoint == name).values(status="deleted"))
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
        instances: int = 1,
        collect: bool = True,
        onnx: bool = True,
        request_timeout_s: float = 60.0,
        max_body_bytes: int = 10 * 1024 * 1024,
    ) -> DeploymentInfo:
        """Add (0% traffic until set) or replace deployment ``deployment`` with ``model`` (``churn:3``,
        ``models:/churn/3``, ``models:/churn@champion``); returns once the router serves it."""
        from sqlalchemy import select

        from jupyter_mlops.store.schema import Deployment

        if not _NAME.match(deployment):
            raise InvalidInput(f"{deployment!r} is not a valid deployment name: lower-case letters, digits and '-'.")
        if instances != 1:
            raise InvalidInput("instances > 1 is not supported yet: deploy with instances=1.")
        name, version = _model_ref(model)
        requested = self.ws.models.get(name, version)
        record = requested
        if onnx and not scoring_script:  # serve a proven ONNX conversion when there is one
            from jupyter_mlops.deploy.onnx import converted_version

            record = converted_version(self.ws, requested.name, requested.version) or requested
        script = str(Path(scoring_script).resolve()) if scoring_script else None
        if script and not Path(script).is_file():
            raise InvalidInput(f"The scoring script {script} does not exist.")
        self._record(endpoint)
        if request_timeout_s <= 0 or max_body_bytes <= 0:
            raise InvalidInput("request_timeout_s and max_body_bytes must be positive.")
        options = json.dumps(
            {
                "collect": collect,
                "prefer_onnx": onnx,
                "requested": f"{requested.name}:{requested.version}",
                "request_timeout_s": request_timeout_s,
                "max_body_bytes": max_body_bytes,
            }
        )
        with self.ws.store.session() as session:
            row = session.scalar(
                select(Deployment).where(Deployment.endpoint == endpoint, Deployment.name == deployment)
            )
            replacing = row is not None and row.status in ACTIVE
            if row is None:
                row = Deployment(endpoint=endpoint, name=deployment)
                session.add(row)
            row.model_name, row.model_version, row.model_uri = record.name, record.version, record.source
            row.scoring_script, row.options, row.error = script, options, None
            row.status = "updating" if replacing else "creating"
        self._apply(endpoint)
        info = next(d for d in self.show(endpoint).deployments if d.name == deployment)
        if info.status == "failed":
            self.ws.events.emit(
                "deployment.failed",
                f"endpoints/{endpoint}/deployments/{deployment}",
                {"endpointName": endpoint, "deploymentName": deployment, "model": info.model, "error": info.error},
            )
            raise MlopsError(f"Deployment {endpoint}/{deployment} of {info.model} failed to load: {info.error}")
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
        info = self.show(endpoint)
        names = {d.name for d in info.deployments}
        clean = _percentages(traffic, names, "traffic")
        total = sum(clean.values())
        if total not in (0, 100):
            raise InvalidInput(f"Traffic percentages must sum to 0 or 100, not {total}: {clean}.")
        both = [n for n, p in clean.items() if p > 0 and info.mirror.get(n, 0) > 0]
        if both:
            raise InvalidInput(f"{both[0]} receives mirrored traffic: a deployment is either live or mirrored.")
        self._update(endpoint, traffic=clean)
        self.ws.events.emit(
            "deployment.traffic_changed", f"endpoints/{endpoint}", {"endpointName": endpoint, "traffic": clean}
        )
        return self.show(endpoint)

    def set_mirror(self, endpoint: str, mirror: dict[str, int]) -> EndpointInfo:
        """One mirror deployment at most, at most 50%, and not one that receives live traffic."""
        info = self.show(endpoint)
        clean = {n: p for n, p in _percentages(mirror, {d.name for d in info.deployments}, "mirror").items() if p}
        if len(clean) > 1:
            raise InvalidInput(f"At most one deployment can be mirrored; got {sorted(clean)}.")
        for name, percent in clean.items():
            if percent > 50:
                raise InvalidInput(f"At most 50% of traffic can be mirrored; got {percent}% for {name}.")
            if info.traffic.get(name, 0) > 0:
                raise InvalidInput(f"{name} receives live traffic: a deployment is either live or mirrored.")
        self._update(endpoint, mirror=clean)
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
            error = {400: InvalidInput, 404: NotFound}.get(exc.code, MlopsError)
            raise error(f"{endpoint} answered {exc.code}: {message}") from exc
        except urllib.error.URLError as exc:
            raise BackendUnavailable(f"Endpoint {endpoint} does not answer at {_uri(record)}: {exc.reason}") from exc

    def logs(self, endpoint: str, deployment: str | None = None, *, lines: int = 100) -> str:
        path = self._log_path(endpoint)
        if not path.exists():
            return ""
        text = path.read_text(errors="replace").splitlines()
        if deployment:
            text = [line for line in text if deployment in line]
        return "\n".join(text[-lines:])

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

    def _log_path(self, name: str) -> Path:
        return self.ws.root / "logs" / "endpoints" / f"{name}.log"

    def _start(self, name: str) -> None:
        """Start the router process, detached from this one, and wait until it answers."""
        from sqlalchemy import update

        from jupyter_mlops.store.endpoints import EndpointRecord

        record = self._record(name)
        log_path = self._log_path(name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "jupyter_mlops.deploy.router",
            "--endpoint",
            name,
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
        with open(log_path, "a") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a kernel restart does not stop it
                env={**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"},
            )
        with self.ws.store.session() as session:
            session.execute(
                update(EndpointRecord).where(EndpointRecord.name == name).values(pid=process.pid, status="starting")
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise MlopsError(f"The router of {name} exited at start: {self.logs(name, lines=20)}")
            if _answers(_uri(record) + "/ready"):
                with self.ws.store.session() as session:
                    session.execute(update(EndpointRecord).where(EndpointRecord.name == name).values(status="running"))
                return
            time.sleep(0.05)
        _stop(process.pid)
        raise MlopsError(f"The router of {name} did not become ready within {START_TIMEOUT_S:.0f} s.")

    def _reconcile(self, record: EndpointRecord) -> EndpointRecord:
        """A router that should run but does not is reported and restarted."""
        if record.status not in ("running", "crashed") or _alive(record.pid):
            return record
        self._set_status(record.name, "crashed")
        try:
            self._start(record.name)
            record = self._record(record.name)
            record.note = "the router had crashed and was restarted"  # type: ignore[attr-defined]
        except MlopsError as exc:
            record = self._record(record.name)
            record.note = f"the router crashed and could not be restarted: {exc}"  # type: ignore[attr-defined]
        return record

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
        """Ask the router to apply the stored configuration and wait until it has."""
        from sqlalchemy import update

        from jupyter_mlops.store.endpoints import EndpointRecord

        if bump:
            with self.ws.store.session() as session:
                session.execute(
                    update(EndpointRecord)
                    .where(EndpointRecord.name == endpoint)
                    .values(config_version=EndpointRecord.config_version + 1)
                )
        target = self._record(endpoint).config_version
        deadline = time.monotonic() + APPLY_TIMEOUT_S
        while time.monotonic() < deadline:
            record = self._record(endpoint)
            if record.applied_version >= target:
                return
            if not _alive(record.pid):
                raise MlopsError(f"The router of {endpoint} is not running: {self.logs(endpoint, lines=20)}")
            time.sleep(0.05)
        raise MlopsError(f"The router of {endpoint} did not apply the change within {APPLY_TIMEOUT_S:.0f} s.")

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
        deployments = [
            DeploymentInfo(
                endpoint=record.name,
                name=row.name,
                model=f"{row.model_name}:{row.model_version}",
                status=row.status,
                traffic=traffic.get(row.name, 0),
                mirror=mirror.get(row.name, 0),
                error=row.error,
                created_at=row.created_at,
                requested=json.loads(row.options or "{}").get("requested"),
            )
            for row in rows
        ]
        return EndpointInfo(
            name=record.name,
            status=record.status,
            scoring_uri=_uri(record) + "/score" if record.port else None,
            auth=record.auth,
            pid=record.pid,
            traffic=traffic,
            mirror=mirror,
            deployments=deployments,
            note=getattr(record, "note", None),
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


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) is not alive
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _stop(pid: int | None) -> None:
    if not _alive(pid):
        return
    assert pid is not None
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
