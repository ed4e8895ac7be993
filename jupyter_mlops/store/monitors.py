"""The monitor tables: what to watch, against which reference, the end of the last window checked, and the
figures of every run (the history its charts read)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, Index, Integer, String, Text
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


class MonitorFigureRecord(Base):
    """One figure of one monitor run: a signal (drift_score, null_rate, prediction_drift, ...) for one feature, or
    for the whole window when ``feature`` is NULL. Read as a time series by ``(monitor, time)``."""

    __tablename__ = "mlops_monitor_figures"
    __table_args__ = (Index("ix_mlops_monitor_figures_monitor_time", "monitor", "time"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    monitor: Mapped[str] = mapped_column(String(255), nullable=False)
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)  # the end of the run's window
    signal: Mapped[str] = mapped_column(String(64), nullable=False)
    feature: Mapped[str | None] = mapped_column(String(255), nullable=True)
    value: Mapped[float] = mapped_column(Float, nullable=False)
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    alert: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
