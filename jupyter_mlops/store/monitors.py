"""The monitor table: what to watch, against which reference, and the end of the last window checked."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from jupyter_mlops.store.schema import Base, utcnow


class MonitorRecord(Base):
    __tablename__ = "mlops_monitors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    endpoint: Mapped[str] = mapped_column(String(255), nullable=False)
    deployment: Mapped[str | None] = mapped_column(String(255), nullable=True)
    reference: Mapped[str] = mapped_column(String(1024), nullable=False)  # a Parquet file in the workspace
    features: Mapped[str] = mapped_column(Text, nullable=False, default="[]")
    schedule_s: Mapped[int] = mapped_column(Integer, nullable=False, default=900)
    thresholds: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    window_end: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    last_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_result: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
