"""The live figures of endpoints over time: one row per deployment per interval (a minute by default).

Written by the endpoint's supervisor from the workers' published counters, so the past stays visible after the
processes restart; rows older than the retention are deleted by the same writer.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from jupyter_mlops.store.schema import Base


class SeriesPoint(Base):
    """What one deployment served in one interval ending at ``at``."""

    __tablename__ = "mlops_endpoint_series"
    __table_args__ = (Index("ix_mlops_endpoint_series_endpoint_at", "endpoint", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    endpoint: Mapped[str] = mapped_column(String(255), nullable=False)
    deployment: Mapped[str] = mapped_column(String(255), nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    interval_s: Mapped[float] = mapped_column(Float, nullable=False)
    requests: Mapped[int] = mapped_column(Integer, nullable=False)
    errors: Mapped[int] = mapped_column(Integer, nullable=False)
    p50_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    p99_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    traffic: Mapped[int] = mapped_column(Integer, nullable=False)  # its live share (%) when the interval ended
    mirror: Mapped[int] = mapped_column(Integer, nullable=False)  # its mirrored share (%)
