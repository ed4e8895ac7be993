"""Automations: rules that act on logged events, and one row per (automation, event) they acted on.

The unique (automation, event_id) pair is the idempotency key: whichever runner inserts it owns the action; a row
left ``running`` by a runner that died is taken over by a conditional update, so an action is never lost and two
runners never both run it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from jupyter_mlops.store.schema import Base, utcnow


class AutomationRecord(Base):
    """One automation: the event types and filters it reacts to, its action, and how far it has read the log."""

    __tablename__ = "mlops_automations"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    types: Mapped[str] = mapped_column(Text, nullable=False)  # JSON list of event types
    conditions: Mapped[str] = mapped_column(Text, nullable=False, default="{}")  # JSON: key -> glob
    action: Mapped[str] = mapped_column(Text, nullable=False)  # JSON: the action and its arguments
    cooldown_s: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    cursor: Mapped[int] = mapped_column(Integer, nullable=False, default=0)  # the last event seq it looked at
    created_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class AutomationRunRecord(Base):
    """One action an automation took (or skipped, saying why) for one event."""

    __tablename__ = "mlops_automation_runs"
    __table_args__ = (UniqueConstraint("automation", "event_id", name="uq_mlops_automation_runs_event"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    automation: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    event_id: Mapped[str] = mapped_column(String(64), nullable=False)
    event_seq: Mapped[int] = mapped_column(Integer, nullable=False)
    event_type: Mapped[str] = mapped_column(String(128), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # running, succeeded, failed, skipped
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: what the action returned
    owner: Mapped[str | None] = mapped_column(String(255), nullable=True)  # the runner (ProcessIdentity)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
