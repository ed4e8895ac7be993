"""Tables of the durable event log: events, subscriptions and per-subscription deliveries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from jupyter_mlops.store.schema import Base, utcnow


class EventRecord(Base):
    """One lifecycle event (a CloudEvents envelope); ``seq`` orders them, ``id`` deduplicates them."""

    __tablename__ = "mlops_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    type: Mapped[str] = mapped_column(String(128), nullable=False, index=True)
    source: Mapped[str] = mapped_column(String(512), nullable=False)
    subject: Mapped[str] = mapped_column(String(512), nullable=False)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    data: Mapped[str] = mapped_column(Text, nullable=False)  # JSON


class SubscriptionRecord(Base):
    """Who wants which events, and how they are reached (webhook, e-mail or an in-process callback)."""

    __tablename__ = "mlops_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # webhook | email | callback
    target: Mapped[str] = mapped_column(String(1024), nullable=False)  # URL, address, or callback name
    types: Mapped[str] = mapped_column(Text, nullable=False, default="[]")  # JSON list; empty = every type
    subject: Mapped[str] = mapped_column(String(512), nullable=False, default="*")  # glob
    secret: Mapped[str] = mapped_column(String(255), nullable=False)
    options: Mapped[str] = mapped_column(Text, nullable=False, default="{}")  # JSON (smtp server, ...)
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=8)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class DeliveryRecord(Base):
    """One event owed to one subscription: pending until delivered, dead after ``max_attempts`` failures."""

    __tablename__ = "mlops_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_seq", name="uq_mlops_deliveries_subscription_event"),
        Index("ix_mlops_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("mlops_subscriptions.id", ondelete="CASCADE"), nullable=False
    )
    event_seq: Mapped[int] = mapped_column(ForeignKey("mlops_events.seq", ondelete="CASCADE"), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")  # pending|delivered|dead
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
