"""Rollouts: one row per rollout of a deployment through traffic steps, the record its controller drives.

``active_endpoint`` is the endpoint's name while the rollout is not finished and NULL after: its unique constraint
makes a second active rollout on one endpoint impossible, even from two processes at once. ``controller`` is the
ProcessIdentity of the one process that drives it, written by a conditional claim.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from jupyter_mlops.store.schema import Base, utcnow


class RolloutRecord(Base):
    """A rollout: what it moves, its steps and guards, where it stands and what it last measured."""

    __tablename__ = "mlops_rollouts"
    __table_args__ = (UniqueConstraint("active_endpoint", name="uq_mlops_rollouts_active_endpoint"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    endpoint: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    active_endpoint: Mapped[str | None] = mapped_column(String(255), nullable=True)
    deployment: Mapped[str] = mapped_column(String(255), nullable=False)
    model: Mapped[str | None] = mapped_column(String(512), nullable=True)
    steps: Mapped[str] = mapped_column(Text, nullable=False)  # JSON list of percentages
    bake_s: Mapped[float] = mapped_column(Float, nullable=False)
    guards: Mapped[str] = mapped_column(Text, nullable=False)  # JSON: guard -> threshold
    promote_alias: Mapped[str | None] = mapped_column(String(255), nullable=True)
    state: Mapped[str] = mapped_column(String(16), nullable=False)  # running, paused, aborting, completed, ...
    step_index: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    step_applied: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    step_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    baseline: Mapped[str] = mapped_column(Text, nullable=False)  # JSON: {"traffic": {...}, "mirror": {...}}
    window: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: counters when the step started
    figures: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: the last guard figures
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    controller: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
