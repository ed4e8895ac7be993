"""The release policy: which aliases are protected and what a version needs before it may hold one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from jupyter_mlops.store.schema import Base, utcnow

DEFAULT_PROTECTED = ("champion", "production")  # what a new workspace protects (gate and approval, one person)


class ProtectedAliasRecord(Base):
    """One protected alias. No row: the alias moves freely. The migration adds the default rows."""

    __tablename__ = "mlops_protected_aliases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alias: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    require_gate: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    require_approval: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    four_eyes: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    updated_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
