"""Tables for what MLflow has no place for. Every change here comes with a migration in ``migrations/``."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back: they were stored as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    pass


class Deployment(Base):
    """A model version served by an endpoint; the registry refuses to delete what an active one uses."""

    __tablename__ = "mlops_deployments"
    __table_args__ = (UniqueConstraint("endpoint", "name", name="uq_mlops_deployments_endpoint_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    endpoint: Mapped[str] = mapped_column(String(255), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    model_name: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    model_version: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(32), nullable=False, default="active")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    # since 0004: what the router needs to serve it
    model_uri: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    scoring_script: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    options: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: collect, prefer_onnx, ...
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # since 0013: what it was given (JSON {"cpu", "memory", "gpu"}) and the device it infers on
    resources: Mapped[str | None] = mapped_column(Text, nullable=True)
    provider: Mapped[str | None] = mapped_column(String(64), nullable=True)

    @property
    def qualified_name(self) -> str:
        return f"{self.endpoint}/{self.name}"


ACTIVE_DEPLOYMENT_STATES = ("creating", "active", "updating")


class Environment(Base):
    """One version (content hash) of an environment spec and the state of its venv + kernelspec build."""

    __tablename__ = "mlops_environments"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_mlops_environments_name_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    version: Mapped[str] = mapped_column(String(64), nullable=False)  # sha256 of the normalised spec
    spec: Mapped[str] = mapped_column(String, nullable=False)  # JSON: python, requirements, source
    status: Mapped[str] = mapped_column(String(32), nullable=False, default="registered")
    venv_path: Mapped[str | None] = mapped_column(String, nullable=True)
    kernel_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    lock: Mapped[str | None] = mapped_column(String, nullable=True)  # ``pip freeze`` of the built venv
    error: Mapped[str | None] = mapped_column(String, nullable=True)  # why the last build failed
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    built_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


ENVIRONMENT_STATES = ("registered", "building", "ready", "failed")
