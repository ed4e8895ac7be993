"""Pydantic request and response models of the REST API (mirrored by ``labextension/src/tokens.ts``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- responses ----------------------------------------------------------------------------------------------------
class ModelVersionOut(BaseModel):
    name: str
    version: int
    tags: dict[str, str]
    aliases: list[str]
    description: str | None
    source: str
    run_id: str | None
    created_by: str | None
    created_at: str | None
    archived: bool


class RegisteredModelOut(BaseModel):
    name: str
    description: str | None
    tags: dict[str, str]
    aliases: dict[str, int]
    latest_version: int | None
    created_at: str | None
    updated_at: str | None


class ModelVersionList(BaseModel):
    versions: list[ModelVersionOut]


class ModelDetail(BaseModel):
    model: RegisteredModelOut
    versions: list[ModelVersionOut]


class DeletedVersions(BaseModel):
    name: str
    deleted: list[int]


class RunOut(BaseModel):
    run_id: str
    name: str | None
    experiment: str
    status: str
    user: str | None
    start_time: str | None
    end_time: str | None
    duration_s: float | None
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    parent_run_id: str | None
    artifact_uri: str


class RunList(BaseModel):
    runs: list[RunOut]


class ErrorOut(BaseModel):
    message: str
    error: str
    data: dict[str, Any] = Field(default_factory=dict)


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 envelope (JSON format)."""

    specversion: Literal["1.0"] = "1.0"
    id: str
    source: str
    type: str
    time: str
    subject: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    data: dict[str, Any] = Field(default_factory=dict)


class EventList(BaseModel):
    events: list[CloudEvent]


# -- requests -----------------------------------------------------------------------------------------------------
class RegisterVersionRequest(_Strict):
    source: str = Field(description="A runs:/<run_id>/<artifact path> URI")
    tags: dict[str, str] = Field(default_factory=dict)
    description: str | None = None

    @field_validator("source")
    @classmethod
    def _runs_uri(cls, value: str) -> str:
        if not value.startswith("runs:/") or len(value) <= len("runs:/"):
            raise ValueError("source must be a runs:/<run_id>/<artifact path> URI")
        return value


class UpdateVersionRequest(_Strict):
    tags: dict[str, str] | None = Field(default=None, description="Tags to set (added or overwritten)")
    remove_tags: list[str] | None = Field(default=None, description="Tag names to remove")
    archived: bool | None = None


class SetAliasRequest(_Strict):
    version: int = Field(ge=1)


class RunsQuery(_Strict):
    experiment: str | None = None
    max_results: int = Field(default=50, ge=1, le=1000)


class EventsQuery(_Strict):
    after: str | None = Field(default=None, description="Only the events after this event id")
    limit: int = Field(default=100, ge=1, le=1000)


class ModelsQuery(_Strict):
    filter: str | None = None
    include_archived: bool = False
