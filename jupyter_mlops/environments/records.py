"""The environment record the API returns; the CLI's ``--json`` uses the same field names."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, ClassVar

from jupyter_mlops.records import Record

if TYPE_CHECKING:
    from jupyter_mlops.store import schema


@dataclasses.dataclass(frozen=True)
class Environment(Record):
    # the columns of ``env list`` (one record shows every field)
    table_columns: ClassVar[tuple[str, ...]] = (
        "name",
        "short_version",
        "python",
        "status",
        "kernel_name",
        "created_at",
        "built_at",
    )

    name: str
    version: str  # the content hash of the spec
    python: str
    requirements: list[str]
    source: str | None  # the spec file it was registered from
    status: str  # registered | building | ready | failed
    venv_path: str | None
    kernel_name: str | None
    lock: str | None  # ``pip freeze`` of the built venv
    error: str | None  # why the last build failed
    created_at: datetime | None
    built_at: datetime | None

    @property
    def short_version(self) -> str:
        return self.version[:12]

    @classmethod
    def from_row(cls, row: schema.Environment) -> Environment:
        spec = json.loads(row.spec)
        return cls(
            name=row.name,
            version=row.version,
            python=spec["python"],
            requirements=list(spec["requirements"]),
            source=spec.get("source"),
            status=row.status,
            venv_path=row.venv_path,
            kernel_name=row.kernel_name,
            lock=row.lock,
            error=row.error,
            created_at=_utc(row.created_at),
            built_at=_utc(row.built_at),
        )


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes: they were written in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)
