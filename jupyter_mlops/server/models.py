"""Pydantic request and response models of the REST API.

A response that is a core record is derived from the record's dataclass (``record_model``), so that each record
shape is declared once: here only what the REST face adds (a deployment's ``live`` figures, list wrappers) or
serves differently. ``openapi.yaml``'s schemas are generated from these models (``python -m
jupyter_mlops.server.spec``) and the labextension's TypeScript types from ``openapi.yaml``.
"""

from __future__ import annotations

import dataclasses
import types
from datetime import datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model, field_validator
from typing_extensions import TypedDict

from jupyter_mlops.deploy.endpoints import DeploymentInfo, EndpointInfo
from jupyter_mlops.deploy.live import LiveStats
from jupyter_mlops.deploy.series import LivePoint
from jupyter_mlops.events.envelope import EVENT_TYPES, Event
from jupyter_mlops.monitoring.history import MonitorFigure
from jupyter_mlops.monitoring.monitors import Monitor, MonitorRun
from jupyter_mlops.pipelines.records import PipelineInfo, PipelineRunInfo
from jupyter_mlops.records import ModelVersion, RegisteredModel, Run
from jupyter_mlops.release.comparison import Comparison
from jupyter_mlops.release.records import Approval, Promotion
from jupyter_mlops.run_code import RunCode

IsoTime = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
"""A datetime as ``Record.to_dict`` serves it: an ISO 8601 string."""

_REST_TYPES: dict[Any, Any] = {datetime: IsoTime}  # core type -> its REST type; each derived record adds itself


def _rest_type(hint: Any) -> Any:
    """``hint`` with datetimes as ISO strings and records as their REST models, at any depth."""
    if hint in _REST_TYPES:
        return _REST_TYPES[hint]
    args, origin = get_args(hint), get_origin(hint)
    if not args or origin is Literal:
        return hint
    mapped = tuple(_rest_type(a) for a in args)
    return Union[mapped] if origin in (Union, types.UnionType) else origin[mapped]  # noqa: UP007


def _record_fields(record: type, drop: tuple[str, ...], notes: dict[str, str]) -> dict[str, tuple[Any, Any]]:
    """The dataclass's fields as pydantic ``(type, FieldInfo)`` pairs, defaults kept, ``notes`` as descriptions."""
    # a module may define its own list() (automations does): the builtins are meant in an annotation
    hints, fields = get_type_hints(record, localns={"list": list, "dict": dict}), {}
    for f in dataclasses.fields(record):
        if f.name in drop:
            continue
        info: dict[str, Any] = {"description": notes.get(f.name)}
        if f.default is not dataclasses.MISSING:
            info["default"] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            info["default_factory"] = f.default_factory
        fields[f.name] = (_rest_type(hints[f.name]), Field(**info))
    return fields


def record_model(
    record: type,
    name: str,
    *,
    drop: tuple[str, ...] = (),
    notes: dict[str, str] | None = None,
    doc: str | None = None,
    **rest: Any,
) -> type[BaseModel]:
    """The response model of a core record: the dataclass's fields less ``drop``, described by ``notes``; ``rest``
    (``name=(type, default)``) replaces a field the REST face serves differently, in place, or adds its own."""
    model = create_model(name, __doc__=doc, **(_record_fields(record, drop, notes or {}) | rest))
    _REST_TYPES[record] = model
    return model


def record_dict(record: type, name: str, *, doc: str | None = None) -> type:
    """A record kept as JSON: every field optional and unknown keys passed through, so that what an older version
    stored reads back as it was."""
    td = TypedDict(name, {k: t for k, (t, _) in _record_fields(record, (), {}).items()}, total=False)
    td.__doc__, td.__pydantic_config__ = doc, ConfigDict(extra="allow")
    return td


# -- records --------------------------------------------------------------------------------------------------------
ModelVersionOut = record_model(ModelVersion, "ModelVersionOut")
RegisteredModelOut = record_model(RegisteredModel, "RegisteredModelOut")
RunOut = record_model(Run, "RunOut")
RunCodeOut = record_model(
    RunCode,
    "RunCodeOut",
    drop=("notebook_file",),  # a path on the server: the REST face serves it relative to the server's root instead
    notes={
        "notebook_artifact": "notebook/NAME.ipynb (executed) or code/NAME.ipynb (a copy)",
        "notebook": "The notebook (nbformat JSON)",
        "cell": "The source of a %%mlops_job cell",
    },
    contents_path=(str | None, Field(description="The artifact's path under the server root, when it is there")),
)
LiveOut = record_model(
    LiveStats,
    "LiveOut",
    drop=("deployment",),  # the deployment that holds it says which
    doc="Read from the router's /metrics: the rate over the interval since the previous reading (null on the first).",
)
DeploymentOut = record_model(
    DeploymentInfo,
    "DeploymentOut",
    drop=("endpoint",),  # the endpoint that holds it says which
    notes={
        "model": "NAME:VERSION",
        "runs_in": "router (the endpoint's workers), venv or docker",
        "resources": 'What it was given: {"cpu": 2, "memory": "2Gi", "gpu": 0}',
        "provider": "Where it infers: CUDAExecutionProvider, CPUExecutionProvider, cuda or cpu",
        "limits": "How its target applied its resources, and why it is on the CPU when a GPU was preferred",
    },
    live=(LiveOut | None, None),
)
EndpointOut = record_model(EndpointInfo, "EndpointOut", drop=("pid", "instances"))  # process details stay local
PipelineOut = record_model(PipelineInfo, "PipelineOut", drop=("spec",))  # the spec text: ``pipeline show`` only
PipelineRunOut = record_model(
    PipelineRunInfo,
    "PipelineRunOut",
    notes={"steps": "Step name -> state (succeeded, reused, failed, skipped, ...)"},
)
MonitorRunOut = record_dict(MonitorRun, "MonitorRunOut", doc="A monitor run's outcome, as the monitor keeps it.")
MonitorOut = record_model(
    Monitor,
    "MonitorOut",
    # the record keeps it as a plain dict; it is the MonitorRun of the last run, as stored then
    last_result=(MonitorRunOut | None, Field(description="The last run: rows, drifted, drift_share, alerts, ...")),
)
CloudEvent = record_model(
    Event,
    "CloudEvent",
    drop=("seq",),  # the log's own order; clients resume with Last-Event-ID
    doc="A CloudEvents 1.0 envelope (JSON format).",
    notes={"type": "The lifecycle event: " + ", ".join(EVENT_TYPES)},
    subject=(str | None, ...),  # the log's events all have one; CloudEvents allows none
    specversion=(Literal["1.0"], "1.0"),
    datacontenttype=(Literal["application/json"], "application/json"),
)


ApprovalOut = record_model(
    Approval,
    "ApprovalOut",
    notes={"status": "PendingApproval, Approved or Rejected; null: nobody asked"},
)
PromotionOut = record_model(Promotion, "PromotionOut", notes={"moved": "False: the alias already pointed there"})
ComparisonOut = record_model(
    Comparison,
    "ComparisonOut",
    doc="What differs between two versions: each list holds what differs (with ?unchanged=true also what does not).",
    notes={"same": "Per section (params, metrics, data, packages), how many entries are the same"},
)


# -- what only the REST face has ------------------------------------------------------------------------------------
class ModelVersionList(BaseModel):
    versions: list[ModelVersionOut]


class ModelDetail(BaseModel):
    model: RegisteredModelOut
    versions: list[ModelVersionOut]


class DeletedVersions(BaseModel):
    name: str
    deleted: list[int]


class RunList(BaseModel):
    runs: list[RunOut]


class GateOut(BaseModel):
    """The evaluation gate's verdict on a version, from the tags the gate set."""

    verdict: Literal["passed", "failed", "none"] = Field(description="none: no gate ran on it")
    run_id: str | None = Field(description="The evaluation run (or pipeline step) that judged it")
    baseline: str | None = Field(description="NAME:VERSION it was compared with; null without a baseline")
    evaluated_at: str | None = None


class ReleaseStateOut(BaseModel):
    """Where a version stands on its way to a protected alias: the gate's verdict and the approval."""

    model: str
    version: int
    aliases: list[str]
    gate: GateOut
    approval: ApprovalOut


class ReleaseStateList(BaseModel):
    versions: list[ReleaseStateOut]


class ErrorOut(BaseModel):
    """Every error body; those Jupyter writes itself (a malformed request) have a message and a reason only."""

    model_config = ConfigDict(json_schema_mode_override="validation")  # so only ``message`` is required

    message: str
    error: str = Field("", description="The error class (InvalidInput, NotFound, ModelInUseError, ...)")
    data: dict[str, Any] = Field(default_factory=dict)


class EventList(BaseModel):
    events: list[CloudEvent]


class EndpointList(BaseModel):
    endpoints: list[EndpointOut]


class InvokeOut(BaseModel):
    response: Any = Field(description="What the endpoint answered (JSON)")


class EndpointLogs(BaseModel):
    endpoint: str
    deployment: str | None
    text: str


class PipelineList(BaseModel):
    pipelines: list[PipelineOut]


class PipelineRunList(BaseModel):
    runs: list[PipelineRunOut]


class MonitorList(BaseModel):
    monitors: list[MonitorOut]


MonitorFigureOut = record_model(
    MonitorFigure,
    "MonitorFigureOut",
    notes={"time": "The end of the run's window", "feature": "null: a figure of the whole window"},
)


class MonitorHistory(BaseModel):
    """Every run's figures, oldest first, and the Vega-Lite v5 chart the notebook shows for them."""

    monitor: str
    figures: list[MonitorFigureOut]
    chart: dict[str, Any] = Field(description="A Vega-Lite v5 spec, the figures inlined as its data values")


LivePointOut = record_model(
    LivePoint,
    "LivePointOut",
    notes={
        "time": "The end of the interval",
        "traffic": "The deployment's share of live traffic (%) when the interval ended",
        "mirror": "Its mirrored share (%)",
    },
)


class EndpointHistory(BaseModel):
    """An endpoint's live figures per deployment and interval, oldest first, and the dashboard chart of them."""

    endpoint: str
    points: list[LivePointOut]
    chart: dict[str, Any] = Field(description="A Vega-Lite v5 spec, the points inlined as its data values")


# -- requests: bodies and queries -----------------------------------------------------------------------------------
class RequestModel(BaseModel):
    """A request body or query: a field the API does not have is refused (400), not ignored."""

    model_config = ConfigDict(extra="forbid")


class RegisterVersionRequest(RequestModel):
    source: str = Field(description="A runs:/<run_id>/<artifact path> URI", json_schema_extra={"pattern": "^runs:/.+"})
    tags: dict[str, str] = Field(default_factory=dict)
    description: str | None = None

    @field_validator("source")
    @classmethod
    def _runs_uri(cls, value: str) -> str:
        if not value.startswith("runs:/") or len(value) <= len("runs:/"):
            raise ValueError("source must be a runs:/<run_id>/<artifact path> URI")
        return value


class UpdateVersionRequest(RequestModel):
    tags: dict[str, str] | None = Field(default=None, description="Tags to set (added or overwritten)")
    remove_tags: list[str] | None = Field(default=None, description="Tag names to remove")
    archived: bool | None = None


class SetAliasRequest(RequestModel):
    version: int = Field(ge=1)


class UpdateEndpointRequest(RequestModel):
    traffic: dict[str, int] | None = Field(default=None, description="Percentages per deployment, summing to 0 or 100")
    mirror: dict[str, int] | None = Field(default=None, description="At most one deployment, at most 50%")


class InvokeRequest(RequestModel):
    data: Any = Field(description="The request body: MLflow's JSON formats (inputs, dataframe_split, ...)")
    deployment: str | None = Field(default=None, description="Score with this deployment, whatever the traffic")


class DeployRequest(RequestModel):
    name: str = Field(description="The deployment name (lower-case letters, digits and '-')")
    model: str = Field(description="NAME:VERSION, models:/NAME/VERSION or models:/NAME@ALIAS")
    resources: dict[str, int | float | str] | None = Field(
        default=None,
        description='Per instance: {"cpu": 2 or "500m", "memory": "2Gi", "gpu": 0, 1, ... or "prefer"}',
    )


class ApprovalRequest(RequestModel):
    reason: str | None = Field(default=None, max_length=5000, description="Why it should be approved")


class DecisionRequest(RequestModel):
    comment: str | None = Field(default=None, max_length=5000, description="What the reviewer looked at")


class PromoteRequest(RequestModel):
    alias: str = Field(default="champion", min_length=1, max_length=255)
    reason: str | None = Field(default=None, max_length=5000, description="Why (kept in the event log)")


class CompareQuery(RequestModel):
    a: str = Field(
        min_length=1, max_length=300, description="A version number of the model, or NAME:VERSION, NAME@ALIAS"
    )
    b: str = Field(min_length=1, max_length=300, description="The version to compare with (a number, or a reference)")
    unchanged: bool = Field(default=False, description="Also list what is the same")


class RunsQuery(RequestModel):
    experiment: str | None = None
    max_results: int = Field(default=50, ge=1, le=1000)


class EventsQuery(RequestModel):
    after: str | None = Field(default=None, description="Only the events after this event id")
    limit: int = Field(default=100, ge=1, le=1000)


class ModelsQuery(RequestModel):
    filter: str | None = None
    include_archived: bool = False


class LogsQuery(RequestModel):
    deployment: str | None = None
    lines: int = Field(default=200, ge=1, le=10_000)


class PipelineRunsQuery(RequestModel):
    max_results: int = Field(default=20, ge=1, le=1000)


# -- rollouts and automations ---------------------------------------------------------------------------------------
from jupyter_mlops.automations import Automation, AutomationRun  # noqa: E402
from jupyter_mlops.rollouts import Rollout  # noqa: E402

RolloutOut = record_model(
    Rollout,
    "RolloutOut",
    drop=("controller_pid",),  # a process detail: it stays local
    notes={
        "state": "shadow, running, paused, aborting, completed, rolled_back or aborted",
        "step": "The current step, 1-based",
        "percent": "The current step's share of live traffic",
        "figures": "The deployment's (green) and the previous ones' requests, errors, error_rate, p99_ms in the step",
        "promote": "The alias moved to the model at the end, if any",
    },
)
AutomationOut = record_model(Automation, "AutomationOut")
AutomationRunOut = record_model(
    AutomationRun, "AutomationRunOut", notes={"status": "running, succeeded, failed or skipped"}
)


class RolloutList(BaseModel):
    rollouts: list[RolloutOut]


class AutomationList(BaseModel):
    automations: list[AutomationOut]


class AutomationRunList(BaseModel):
    runs: list[AutomationRunOut]


class StartRolloutRequest(RequestModel):
    deployment: str = Field(description="The deployment moved into live traffic")
    model: str | None = Field(default=None, description="Deploy it first from this model (NAME:VERSION, NAME@ALIAS)")
    steps: list[int] = Field(default=[10, 50, 100], description="Its share of live traffic at each step, in %")
    bake: str | float = Field(default="5m", description="How long each step is watched: 30s, 5m, or seconds")
    shadow: str | float | None = Field(
        default=None, description="A mirrored phase first, this long (10m): green's answers compared with live ones"
    )
    shadow_percent: int = Field(default=50, ge=1, le=50, description="The share mirrored to it in the shadow phase")
    guards: dict[str, float] | None = Field(default=None, description='{"error_rate": 0.01, "p99_ms": 50, ...}')
    promote: bool | str = Field(default=False, description="Move the champion alias (true) or this alias at the end")


class RolloutsQuery(RequestModel):
    endpoint: str | None = None


class AutomationRunsQuery(RequestModel):
    limit: int = Field(default=100, ge=1, le=1000)
