"""The endpoint tables and their queries: what should be running (the record) next to what is (its processes).

Every read and write of endpoint, deployment, worker and launch rows is a named function here, each one
transaction, so the control plane (``deploy/endpoints.py``, ``deploy/supervision.py``) and the router workers
(``deploy/router.py``) never hold SQL of their own.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Boolean, DateTime, Float, Integer, String, Text, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from jupyter_mlops.exceptions import Conflict, NotFound
from jupyter_mlops.store.schema import ACTIVE_DEPLOYMENT_STATES, Base, Deployment, as_utc, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from jupyter_mlops.store import MetadataStore


class EndpointRecord(Base):
    __tablename__ = "mlops_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    auth: Mapped[str] = mapped_column(String(16), nullable=False, default="key")  # key | none
    key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    host: Mapped[str] = mapped_column(String(255), nullable=False, default="127.0.0.1")
    port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(32), nullable=False, default="creating")
    traffic: Mapped[str] = mapped_column(Text, nullable=False, default="{}")  # JSON {deployment: percent}
    mirror: Mapped[str] = mapped_column(Text, nullable=False, default="{}")  # JSON {deployment: percent}
    config_version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    instances: Mapped[int] = mapped_column(Integer, nullable=False, default=1)  # worker processes (since 0008)
    # since 0011: the supervisor process (ProcessIdentity text), or a claim "starting:<claimer>" while one starts
    supervisor: Mapped[str | None] = mapped_column(String(255), nullable=True)
    supervisor_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    @property
    def url(self) -> str:
        """Where its workers listen (``/score``, ``/health``, ``/metrics`` hang below)."""
        return f"http://{self.host}:{self.port}"


class EndpointWorker(Base):
    """One worker process of an endpoint and the configuration version it serves."""

    __tablename__ = "mlops_endpoint_workers"

    endpoint: Mapped[str] = mapped_column(String(255), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    applied_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    # since 0010: the process's start time (processes.process_start), so a reused pid is not taken for it
    pid_start: Mapped[str | None] = mapped_column(String(64), nullable=True)


class DeploymentLaunch(Base):
    """A deployment process being started, kept until the deployment records it (or it is stopped): a control
    plane that dies in between leaves this row, and the next reconciliation stops the process."""

    __tablename__ = "mlops_deployment_launches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    endpoint: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    deployment: Mapped[str] = mapped_column(String(255), nullable=False)
    launch: Mapped[str] = mapped_column(Text, nullable=False)  # JSON of isolated.Launch
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    pid_start: Mapped[str | None] = mapped_column(String(64), nullable=True)  # since 0010, as for workers


class SupervisionEntry(Base):
    """A process of an endpoint found dead (since 0011): which one, why it died as far as it can be told, and what
    replaced it. ``reported`` turns true once a ``list``/``show`` has said so in its note."""

    __tablename__ = "mlops_supervision_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    endpoint: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # worker | deployment | supervisor | launch
    target: Mapped[str] = mapped_column(String(255), nullable=False)  # the slot, the deployment, or ""
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the process that died
    new_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the one started instead
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    restarted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)  # false: the restart failed
    by: Mapped[str] = mapped_column(String(64), nullable=False)  # supervisor | list/show | worker N
    start_failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)  # died at start, in a row
    delay_s: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)  # the back-off before the restart
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    reported: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class BatchEndpointRecord(Base):
    """A batch endpoint: the model (``name:version`` or ``name@alias``, resolved per invocation) and its options."""

    __tablename__ = "mlops_batch_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    model: Mapped[str] = mapped_column(String(512), nullable=False)
    scoring_script: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    options: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


# -- endpoints --------------------------------------------------------------------------------------------------
def add_endpoint(store: MetadataStore, **values: Any) -> None:
    try:
        with store.session() as session:
            session.add(EndpointRecord(**values))
    except IntegrityError as exc:
        name = values.get("name")
        raise Conflict(f"An endpoint named {name!r} exists; delete it first or choose another name.") from exc


def get_endpoint(store: MetadataStore, name: str) -> EndpointRecord:
    with store.session() as session:
        record = session.scalar(select(EndpointRecord).where(EndpointRecord.name == name))
        if record is None:
            names = list(session.scalars(select(EndpointRecord.name)).all())
            raise NotFound(f"No endpoint named {name!r}; endpoints: {', '.join(names) or 'none'}.", names=names)
        return record


def all_endpoints(store: MetadataStore) -> list[EndpointRecord]:
    with store.session() as session:
        return list(session.scalars(select(EndpointRecord).order_by(EndpointRecord.name)).all())


def update_endpoint(store: MetadataStore, name: str, **values: Any) -> None:
    with store.session() as session:
        session.execute(update(EndpointRecord).where(EndpointRecord.name == name).values(**values))


def bump_config(store: MetadataStore, name: str, **values: Any) -> int:
    """A new configuration version (with ``values`` changed in the same write); returns its number."""
    with store.session() as session:
        session.execute(
            update(EndpointRecord)
            .where(EndpointRecord.name == name)
            .values(config_version=EndpointRecord.config_version + 1, **values)
        )
        return session.scalar(select(EndpointRecord.config_version).where(EndpointRecord.name == name)) or 0


def remove_endpoint(store: MetadataStore, name: str) -> None:
    """The record, its workers and its supervision log go; its deployments stay in the history, marked deleted."""
    with store.session() as session:
        session.execute(update(Deployment).where(Deployment.endpoint == name).values(status="deleted"))
        session.execute(delete(EndpointWorker).where(EndpointWorker.endpoint == name))
        session.execute(delete(SupervisionEntry).where(SupervisionEntry.endpoint == name))
        session.execute(delete(EndpointRecord).where(EndpointRecord.name == name))


# -- deployments ------------------------------------------------------------------------------------------------
def deployments(store: MetadataStore, endpoint: str, *, active: bool = False) -> list[Deployment]:
    """The endpoint's deployments that are not deleted (with ``active``: only those that should serve), by name."""
    where = [Deployment.endpoint == endpoint]
    where.append(Deployment.status.in_(ACTIVE_DEPLOYMENT_STATES) if active else Deployment.status != "deleted")
    with store.session() as session:
        return list(session.scalars(select(Deployment).where(*where).order_by(Deployment.name)).all())


def get_deployment(store: MetadataStore, endpoint: str, name: str) -> Deployment | None:
    with store.session() as session:
        return session.scalar(select(Deployment).where(Deployment.endpoint == endpoint, Deployment.name == name))


def save_deployment(
    session: Session, endpoint: str, name: str, *, launched: int | None = None, **values: Any
) -> str | None:
    """Add or replace deployment ``name`` (``values``: model_name, model_version, model_uri, scoring_script,
    options); with ``launched``, its process's launch row goes in the same write (the deployment records it now).
    In the caller's transaction: a deploy records inside the model's guard (``ModelRegistry.guard``).
    Returns the options of the active deployment it replaced (None when it replaced none)."""
    row = session.scalar(select(Deployment).where(Deployment.endpoint == endpoint, Deployment.name == name))
    replacing = row is not None and row.status in ACTIVE_DEPLOYMENT_STATES
    previous = row.options if replacing and row is not None else None
    if row is None:
        row = Deployment(endpoint=endpoint, name=name)
        session.add(row)
    for column, value in values.items():
        setattr(row, column, value)
    row.error = None
    row.status = "updating" if replacing else "creating"
    if launched is not None:
        session.execute(delete(DeploymentLaunch).where(DeploymentLaunch.id == launched))
    return previous


def record_process(
    store: MetadataStore, deployment_id: int, process: dict[str, Any], launched: int, *, claim: str | None = None
) -> bool:
    """A restarted deployment process replaces the recorded one; its launch row goes in the same write. With
    ``claim``, only while the deployment still holds that restart claim (a deploy may have replaced it meanwhile):
    returns whether it was recorded."""
    with store.session() as session:
        stored = session.get(Deployment, deployment_id)
        options = json.loads(stored.options or "{}") if stored is not None else {}
        if stored is None or (claim is not None and options.get("restarting") != claim):
            return False
        options["process"] = process
        options.pop("restarting", None)
        stored.options = json.dumps(options)
        session.execute(delete(DeploymentLaunch).where(DeploymentLaunch.id == launched))
        return True


def claim_deployment(store: MetadataStore, deployment_id: int, seen: str | None, claim: str) -> bool:
    """Mark the deployment's process as being restarted by ``claim``, only if its options are still those ``seen``:
    of two supervisors finding the same dead process, one restarts it."""
    options = json.loads(seen or "{}")
    options["restarting"] = claim
    with store.session() as session:
        query = update(Deployment).where(Deployment.id == deployment_id, Deployment.options == seen)
        return session.execute(query.values(options=json.dumps(options))).rowcount == 1


# -- workers ----------------------------------------------------------------------------------------------------
def workers(store: MetadataStore, endpoint: str) -> list[EndpointWorker]:
    with store.session() as session:
        query = select(EndpointWorker).where(EndpointWorker.endpoint == endpoint).order_by(EndpointWorker.slot)
        return list(session.scalars(query).all())


def reset_worker(store: MetadataStore, endpoint: str, slot: int) -> None:
    """A fresh row for ``slot``, without a process yet: written before the process starts."""
    with store.session() as session:
        session.execute(delete(EndpointWorker).where(EndpointWorker.endpoint == endpoint, EndpointWorker.slot == slot))
        session.add(EndpointWorker(endpoint=endpoint, slot=slot, pid=None, applied_version=0))


def claim_worker(store: MetadataStore, worker: EndpointWorker) -> bool:
    """Take a dead worker's slot for a restart: a fresh row without a process, only if the row is still the one
    seen (same pid, start time and start), so two supervisors never restart the same slot twice."""
    where = [EndpointWorker.endpoint == worker.endpoint, EndpointWorker.slot == worker.slot]
    for column, value in ((EndpointWorker.pid, worker.pid), (EndpointWorker.pid_start, worker.pid_start)):
        where.append(column.is_(None) if value is None else column == value)
    where.append(EndpointWorker.started_at == worker.started_at)
    values = {"pid": None, "pid_start": None, "applied_version": 0, "started_at": utcnow()}
    with store.session() as session:
        return session.execute(update(EndpointWorker).where(*where).values(**values)).rowcount == 1


def set_worker(store: MetadataStore, endpoint: str, slot: int, **values: Any) -> None:
    with store.session() as session:
        session.execute(
            update(EndpointWorker)
            .where(EndpointWorker.endpoint == endpoint, EndpointWorker.slot == slot)
            .values(**values)
        )


class Assignment(NamedTuple):
    """What a router worker reads at each poll."""

    owned: bool  # the store records this process as its slot's worker
    record: EndpointRecord | None  # None: the endpoint is gone, or nothing changed since the version applied
    deployments: list[Deployment]  # the active ones, when there is a change to apply


def worker_assignment(
    store: MetadataStore, endpoint: str, slot: int, *, pid: int, pid_start: str | None, applied: int
) -> Assignment:
    """One read for a worker: whether it still owns its slot (claiming a slot recorded without a process: the
    control plane died between starting it and writing its pid), and the configuration if it changed."""
    where = (EndpointWorker.endpoint == endpoint, EndpointWorker.slot == slot)
    with store.session() as session:
        row = session.execute(select(EndpointWorker.pid, EndpointWorker.pid_start).where(*where)).first()
        if row is not None and row.pid is None:  # read first: an UPDATE would lock SQLite on every poll
            claim = update(EndpointWorker).where(*where, EndpointWorker.pid.is_(None))
            session.execute(claim.values(pid=pid, pid_start=pid_start))
            row = session.execute(select(EndpointWorker.pid, EndpointWorker.pid_start).where(*where)).first()
        owned = (
            row is not None and row.pid == pid and (not row.pid_start or not pid_start or row.pid_start == pid_start)
        )
        if not owned:
            return Assignment(False, None, [])
        record = session.scalar(select(EndpointRecord).where(EndpointRecord.name == endpoint))
        if record is None or record.config_version == applied:
            return Assignment(True, None, [])
        query = select(Deployment).where(
            Deployment.endpoint == endpoint, Deployment.status.in_(ACTIVE_DEPLOYMENT_STATES)
        )
        return Assignment(True, record, list(session.scalars(query).all()))


def report_applied(
    store: MetadataStore, endpoint: str, slot: int, version: int, outcomes: dict[str, tuple[str, str | None]]
) -> None:
    """A worker applied ``version``: each deployment's outcome (status, error) and the worker's version."""
    with store.session() as session:
        for name, (status, error) in outcomes.items():
            session.execute(
                update(Deployment)
                .where(Deployment.endpoint == endpoint, Deployment.name == name)
                .values(status=status, error=error)
            )
        session.execute(
            update(EndpointWorker)
            .where(EndpointWorker.endpoint == endpoint, EndpointWorker.slot == slot)
            .values(applied_version=version)
        )


# -- the supervisor --------------------------------------------------------------------------------------------
class SupervisorState(NamedTuple):
    status: str
    supervisor: str | None
    at: datetime | None


def supervisor_state(store: MetadataStore, endpoint: str) -> SupervisorState | None:
    """What a worker reads every second: the endpoint's status and its recorded supervisor (None: no endpoint)."""
    query = select(EndpointRecord.status, EndpointRecord.supervisor, EndpointRecord.supervisor_at)
    with store.session() as session:
        row = session.execute(query.where(EndpointRecord.name == endpoint)).first()
    if row is None:
        return None
    return SupervisorState(row.status, row.supervisor, as_utc(row.supervisor_at) if row.supervisor_at else None)


def claim_supervisor(
    store: MetadataStore, endpoint: str, *, seen: str | None, claim: str, statuses: tuple[str, ...]
) -> bool:
    """Record ``claim`` as the supervisor being started, only if the record still holds the one ``seen`` and the
    endpoint is in one of ``statuses``: of two workers finding the supervisor dead, one starts the next."""
    where = [EndpointRecord.name == endpoint, EndpointRecord.status.in_(statuses)]
    where.append(EndpointRecord.supervisor.is_(None) if seen is None else EndpointRecord.supervisor == seen)
    with store.session() as session:
        query = update(EndpointRecord).where(*where).values(supervisor=claim, supervisor_at=utcnow())
        return session.execute(query).rowcount == 1


def register_supervisor(store: MetadataStore, endpoint: str, claim: str, identity: str) -> bool:
    """A supervisor started under ``claim`` records itself; False when another took over or the endpoint goes."""
    where = (EndpointRecord.name == endpoint, EndpointRecord.supervisor == claim, EndpointRecord.status != "deleting")
    with store.session() as session:
        query = update(EndpointRecord).where(*where).values(supervisor=identity, supervisor_at=utcnow())
        return session.execute(query).rowcount == 1


class Snapshot(NamedTuple):
    """What the supervisor reads at each check, in one transaction."""

    record: EndpointRecord | None
    workers: list[EndpointWorker]
    deployments: list[Deployment]  # the active ones


def snapshot(store: MetadataStore, endpoint: str) -> Snapshot:
    with store.session() as session:
        record = session.scalar(select(EndpointRecord).where(EndpointRecord.name == endpoint))
        if record is None:
            return Snapshot(None, [], [])
        query = select(EndpointWorker).where(EndpointWorker.endpoint == endpoint).order_by(EndpointWorker.slot)
        rows = list(session.scalars(query).all())
        active = select(Deployment).where(
            Deployment.endpoint == endpoint, Deployment.status.in_(ACTIVE_DEPLOYMENT_STATES)
        )
        return Snapshot(record, rows, list(session.scalars(active.order_by(Deployment.name)).all()))


# -- the supervision log ----------------------------------------------------------------------------------------
def log_supervision(store: MetadataStore, endpoint: str, **values: Any) -> SupervisionEntry:
    with store.session() as session:
        entry = SupervisionEntry(endpoint=endpoint, **values)
        session.add(entry)
        session.flush()
        return entry


def supervision_log(store: MetadataStore, endpoint: str) -> list[SupervisionEntry]:
    """Every process of the endpoint found dead, oldest first."""
    query = select(SupervisionEntry).where(SupervisionEntry.endpoint == endpoint).order_by(SupervisionEntry.id)
    with store.session() as session:
        entries = list(session.scalars(query).all())
    for entry in entries:
        entry.at = as_utc(entry.at)
    return entries


def take_unreported(store: MetadataStore, endpoint: str) -> list[SupervisionEntry]:
    """The entries no ``list``/``show`` has reported yet, marked reported now."""
    where = (SupervisionEntry.endpoint == endpoint, SupervisionEntry.reported.is_(False))
    with store.session() as session:
        entries = list(session.scalars(select(SupervisionEntry).where(*where).order_by(SupervisionEntry.id)).all())
        if entries:
            ids = [e.id for e in entries]
            session.execute(update(SupervisionEntry).where(SupervisionEntry.id.in_(ids)).values(reported=True))
        return entries


# -- launches ---------------------------------------------------------------------------------------------------
def add_launch(store: MetadataStore, endpoint: str, deployment: str, launch: str) -> int:
    with store.session() as session:
        entry = DeploymentLaunch(endpoint=endpoint, deployment=deployment, launch=launch)
        session.add(entry)
        session.flush()
        return entry.id


def update_launch(store: MetadataStore, launch_id: int, launch: str, pid_start: str | None) -> None:
    with store.session() as session:
        query = update(DeploymentLaunch).where(DeploymentLaunch.id == launch_id)
        session.execute(query.values(launch=launch, pid_start=pid_start))


def remove_launch(store: MetadataStore, launch_id: int) -> None:
    with store.session() as session:
        session.execute(delete(DeploymentLaunch).where(DeploymentLaunch.id == launch_id))


def launches(store: MetadataStore, endpoint: str) -> list[DeploymentLaunch]:
    with store.session() as session:
        return list(session.scalars(select(DeploymentLaunch).where(DeploymentLaunch.endpoint == endpoint)).all())
