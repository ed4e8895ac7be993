"""The endpoint tables: what should be running (the record) next to what is (its worker processes)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from jupyter_mlops.store.schema import Base, utcnow


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


class EndpointWorker(Base):
    """One worker process of an endpoint and the configuration version it serves."""

    __tablename__ = "mlops_endpoint_workers"

    endpoint: Mapped[str] = mapped_column(String(255), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    applied_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class DeploymentLaunch(Base):
    """A deployment process being started, kept until the deployment records it (or it is stopped): a control
    plane that dies in between leaves this row, and the next reconciliation stops the process."""

    __tablename__ = "mlops_deployment_launches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    endpoint: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    deployment: Mapped[str] = mapped_column(String(255), nullable=False)
    launch: Mapped[str] = mapped_column(Text, nullable=False)  # JSON of isolated.Launch
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class BatchEndpointRecord(Base):
    """A batch endpoint: the model (``name:version`` or ``name@alias``, resolved per invocation) and its options."""

    __tablename__ = "mlops_batch_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    model: Mapped[str] = mapped_column(String(512), nullable=False)
    scoring_script: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    options: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
