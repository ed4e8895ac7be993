"""The records the API returns. The CLI's ``--json`` and the REST faces use the same field names."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Any

INTERNAL_TAG_PREFIX = "mlops."


def from_millis(millis: int | None) -> datetime | None:
    return None if millis is None else datetime.fromtimestamp(millis / 1000, tz=timezone.utc)


def public_tags(tags: dict[str, str]) -> dict[str, str]:
    """The user's tags, without the ones jupyter-mlops and MLflow keep for themselves."""
    return {k: v for k, v in tags.items() if not k.startswith((INTERNAL_TAG_PREFIX, "mlflow."))}


class Record:
    """Shared by every record: a JSON-ready dict with datetimes as ISO 8601 strings, a compact card in a notebook
    and aligned ``field  value`` lines in a terminal (``repr`` stays the dataclass's, for debugging)."""

    def to_dict(self) -> dict[str, Any]:
        return {k: _jsonable(v) for k, v in dataclasses.asdict(self).items()}  # type: ignore[call-overload]

    def __str__(self) -> str:
        from jupyter_mlops.render import card_text

        return card_text(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self) if not cycle else type(self).__name__)

    def _repr_html_(self) -> str:
        from jupyter_mlops.render import card_html

        return card_html(self)


class Records(list):  # type: ignore[type-arg]
    """A list of records, as the API's listings return them: a table in a notebook, aligned columns in a
    terminal; otherwise a plain list."""

    def __str__(self) -> str:
        from jupyter_mlops.render import Result

        return Result(list(self)).text()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self) if not cycle else "Records")

    def _repr_html_(self) -> str:
        from jupyter_mlops.render import Result

        return Result(list(self))._repr_html_()


def _jsonable(value: Any) -> Any:
    """Datetimes as ISO 8601 strings, at any depth (records nest records)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


@dataclasses.dataclass(frozen=True)
class ModelVersion(Record):
    name: str
    version: int
    tags: dict[str, str]
    aliases: list[str]
    description: str | None
    source: str
    run_id: str | None
    created_by: str | None
    created_at: datetime | None
    archived: bool = False

    @property
    def uri(self) -> str:
        """The standard MLflow URI of this version (``models:/name/3``)."""
        return f"models:/{self.name}/{self.version}"


@dataclasses.dataclass(frozen=True)
class RegisteredModel(Record):
    name: str
    description: str | None
    tags: dict[str, str]
    aliases: dict[str, int]
    latest_version: int | None
    created_at: datetime | None
    updated_at: datetime | None


@dataclasses.dataclass(frozen=True)
class Run(Record):
    run_id: str
    name: str | None
    experiment: str
    status: str
    user: str | None
    start_time: datetime | None
    end_time: datetime | None
    duration_s: float | None
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    parent_run_id: str | None
    artifact_uri: str
