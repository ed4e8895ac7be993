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


# -- endpoints ----------------------------------------------------------------------------------------------------
class LiveOut(BaseModel):
    """Read from the router's /metrics: the rate over the interval since the previous reading (None on the first)."""

    requests: int
    errors: int
    rate_per_s: float | None
    p50_ms: float | None
    p99_ms: float | None


class DeploymentOut(BaseModel):
    name: str
    model: str
    status: str
    traffic: int
    mirror: int
    error: str | None
    created_at: str | None
    requested: str | None
    runs_in: str = Field(default="router", description="router (the endpoint's workers), venv or docker")
    environment: str | None = None
    live: LiveOut | None = None


class EndpointOut(BaseModel):
    name: str
    status: str
    scoring_uri: str | None
    auth: str
    traffic: dict[str, int]
    mirror: dict[str, int]
    deployments: list[DeploymentOut]
    note: str | None


class EndpointList(BaseModel):
    endpoints: list[EndpointOut]


class InvokeOut(BaseModel):
    response: Any


class EndpointLogs(BaseModel):
    endpoint: str
    deployment: str | None
    text: str


class UpdateEndpointRequest(_Strict):
    traffic: dict[str, int] | None = Field(default=None, description="Percentages per deployment, summing to 0 or 100")
    mirror: dict[str, int] | None = Field(default=None, description="At most one deployment, at most 50%")


class InvokeRequest(_Strict):
    data: Any = Field(description="The request body: MLflow's JSON formats (inputs, dataframe_split, ...)")
    deployment: str | None = Field(default=None, description="Score with this deployment, whatever the traffic")


class DeployRequest(_Strict):
    name: str = Field(description="The deployment name (lower-case letters, digits and '-')")
    model: str = Field(description="NAME:VERSION, models:/NAME/VERSION or models:/NAME@ALIAS")


class LogsQuery(_Strict):
    deployment: str | None = None
    lines: int = Field(default=200, ge=1, le=10_000)


# -- pipelines ----------------------------------------------------------------------------------------------------
class PipelineOut(BaseModel):
    name: str
    version: str
    spec_path: str
    runs: int
    last_status: str | None
    last_run_id: str | None
    last_run_at: str | None
    steps: list[str]


class PipelineList(BaseModel):
    pipelines: list[PipelineOut]


class PipelineRunOut(BaseModel):
    run_id: str
    pipeline: str
    version: str
    status: str
    start_time: str | None
    duration_s: float | None
    steps: dict[str, str] = Field(description="Step name -> state (succeeded, reused, failed, skipped, ...)")
    resumed_from: str | None


class PipelineRunList(BaseModel):
    runs: list[PipelineRunOut]


class PipelineRunsQuery(_Strict):
    max_results: int = Field(default=20, ge=1, le=1000)


# -- monitors -----------------------------------------------------------------------------------------------------
class MonitorOut(BaseModel):
    name: str
    endpoint: str
    deployment: str | None
    features: list[str]
    schedule_s: int
    thresholds: dict[str, float]
    window_end: str
    last_run_id: str | None
    last_result: dict[str, Any] | None = Field(description="The last run: rows, drifted, drift_share, alerts, ...")
    created_at: str | None


class MonitorList(BaseModel):
    monitors: list[MonitorOut]


# -- the code of a run --------------------------------------------------------------------------------------------
class RunCodeOut(BaseModel):
    run_id: str
    notebook_artifact: str | None = Field(description="notebook/NAME.ipynb (executed) or code/NAME.ipynb (a copy)")
    contents_path: str | None = Field(description="The artifact's path under the server root, when it is there")
    notebook: dict[str, Any] | None = Field(description="The notebook (nbformat JSON)")
    cell: str | None = Field(description="The source of a %%mlops_job cell")
