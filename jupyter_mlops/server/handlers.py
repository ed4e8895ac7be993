"""REST handlers: one APIHandler per resource, routes in one table (``ROUTES``) under ``/mlops/api/``.

Every verb is ``@tornado.web.authenticated`` (token, and XSRF for cookie-authenticated changes). Blocking core
calls run in the default thread pool. Errors: an ``MlopsError`` answers its ``http_status`` with
``{"message", "error", "data"}``; a body or query that fails validation answers 400; an endpoint that fails on its
own (a model that does not load, a router error) answers 502; never a 500 for bad input.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from pydantic import BaseModel, ValidationError
from tornado.ioloop import IOLoop
from tornado.iostream import StreamClosedError

from jupyter_mlops.exceptions import InvalidInput, MlopsError, UnsupportedMediaType
from jupyter_mlops.server import models as m
from jupyter_mlops.server.events import recent

if TYPE_CHECKING:
    from jupyter_mlops.server.app import MlopsContext
    from jupyter_mlops.workspace import Workspace

API_PREFIX = "mlops/api"
# curl -d and other form clients label a JSON body as a form: read it as JSON too
_JSON_TYPES = frozenset({"application/json", "text/json", "application/x-www-form-urlencoded"})
B = TypeVar("B", bound=BaseModel)
T = TypeVar("T")


class MlopsHandler(APIHandler):
    """The base handler: the workspace, the event bus, JSON bodies and queries, and the error translation."""

    @property
    def mlops(self) -> MlopsContext:
        return self.settings["mlops"]

    @property
    def ws(self) -> Workspace:
        return self.mlops.workspace

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking core call in the thread pool (the stores opened first)."""

        def run() -> T:
            self.mlops.open_stores()
            return fn(*args, **kwargs)

        return await IOLoop.current().run_in_executor(None, run)

    def body(self, model: type[B]) -> B:
        """The JSON body, validated; anything else is the client's error (415, 400), never a 500."""
        kind = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if self.request.body and kind and kind not in _JSON_TYPES and not kind.endswith("+json"):
            raise UnsupportedMediaType(f"Send the body as application/json, not {kind}.", content_type=kind)
        try:
            raw = json.loads(self.request.body or b"{}")
        except RecursionError as exc:
            raise InvalidInput("The request body is nested too deeply; send a flatter JSON document.") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"The request body is not valid JSON: {str(exc)[:200]}.") from exc
        return model.model_validate(raw)

    def query(self, model: type[B]) -> B:
        raw = {k: self.get_query_argument(k) for k in self.request.query_arguments if k in model.model_fields}
        return model.model_validate(raw)

    def send(self, payload: BaseModel, status: int = 200) -> None:
        self.set_status(status)
        self.finish(payload.model_dump_json())

    # -- errors -----------------------------------------------------------------------------------------------
    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, MlopsError):
            status_code = exc.http_status
        elif isinstance(exc, ValidationError):
            status_code = 400
        super().send_error(status_code, **kwargs)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, MlopsError):
            error = m.ErrorOut(message=exc.message, error=type(exc).__name__, data=_jsonable(exc.data))
        elif isinstance(exc, ValidationError):
            error = m.ErrorOut(message=_validation_message(exc), error="InvalidInput", data={})
        else:
            super().write_error(status_code, **kwargs)
            return
        self.set_header("Content-Type", "application/json")
        self.finish(error.model_dump_json())

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, ValidationError) or (isinstance(value, MlopsError) and value.http_status < 500):
            self.log.info("%s %s: %s", self.request.method, self.request.uri, value)
            return
        super().log_exception(typ, value, tb)


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "Invalid request: " + "; ".join(parts) + "."


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(data, default=str))


def _version(record: Any) -> m.ModelVersionOut:
    return m.ModelVersionOut.model_validate(record.to_dict())


# -- models -----------------------------------------------------------------------------------------------------------
class ModelsHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        q = self.query(m.ModelsQuery)
        versions = await self.call(self.ws.models.list, q.filter, include_archived=q.include_archived)
        self.send(m.ModelVersionList(versions=[_version(v) for v in versions]))


class ModelHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        def read() -> m.ModelDetail:
            model = self.ws.models.get_model(name)
            # name=... narrows the search in MLflow; names the filter syntax cannot express scan every version
            listed = self.ws.models.list(f"name={name}" if _filter_safe(name) else None, include_archived=True)
            versions = [v for v in listed if v.name == name]
            return m.ModelDetail(
                model=m.RegisteredModelOut.model_validate(model.to_dict()), versions=[_version(v) for v in versions]
            )

        self.send(await self.call(read))


def _filter_safe(name: str) -> bool:
    return not re.search(r"[=,*'\"`\\]", name)


class ModelVersionsHandler(MlopsHandler):
    @tornado.web.authenticated
    async def post(self, name: str) -> None:
        req = self.body(m.RegisterVersionRequest)
        created = await self.call(self.ws.models.register, req.source, name, tags=req.tags, description=req.description)
        self.mlops.watcher.nudge()
        self.set_header(
            "Location",
            url_path_join(self.base_url, API_PREFIX, "models", quote(name), "versions", str(created.version)),
        )
        self.send(_version(created), status=201)


class ModelVersionHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self, name: str, version: str) -> None:
        self.send(_version(await self.call(self.ws.models.get, name, version)))

    @tornado.web.authenticated
    async def patch(self, name: str, version: str) -> None:
        req = self.body(m.UpdateVersionRequest)

        def update() -> Any:
            record = self.ws.models.get(name, version)
            if req.tags:
                record = self.ws.models.set_tags(name, record.version, req.tags)
            if req.remove_tags:
                record = self.ws.models.delete_tags(name, record.version, req.remove_tags)
            if req.archived is not None and req.archived != record.archived:
                record = self.ws.models.archive(name, record.version, archived=req.archived)
            return record

        record = await self.call(update)
        self.mlops.watcher.nudge()
        self.send(_version(record))

    @tornado.web.authenticated
    async def delete(self, name: str, version: str) -> None:
        force = self.get_query_argument("force", "false").lower() in ("1", "true", "yes")
        deleted = await self.call(self.ws.models.delete, name, version, force=force)
        self.mlops.watcher.nudge()
        self.send(m.DeletedVersions(name=name, deleted=deleted))


class ModelAliasHandler(MlopsHandler):
    @tornado.web.authenticated
    async def put(self, name: str, alias: str) -> None:
        req = self.body(m.SetAliasRequest)
        record = await self.call(self.ws.models.set_alias, name, alias, req.version)
        self.mlops.watcher.nudge()
        self.send(_version(record))

    @tornado.web.authenticated
    async def delete(self, name: str, alias: str) -> None:
        await self.call(self.ws.models.delete_alias, name, alias)
        self.mlops.watcher.nudge()
        self.set_status(204)
        self.finish()


# -- runs -------------------------------------------------------------------------------------------------------------
class RunsHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        q = self.query(m.RunsQuery)
        runs = await self.call(self.ws.runs.list, q.experiment, max_results=q.max_results)
        self.send(m.RunList(runs=[m.RunOut.model_validate(r.to_dict()) for r in runs]))


class RunHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self, run_id: str) -> None:
        _check_run_id(run_id)
        run = await self.call(self.ws.runs.get, run_id)
        self.send(m.RunOut.model_validate(run.to_dict()))


class RunCodeHandler(MlopsHandler):
    """The notebook a run executed (or started from) and its cell's source, to open in the Lab."""

    @tornado.web.authenticated
    async def get(self, run_id: str) -> None:
        from jupyter_mlops.run_code import run_code

        _check_run_id(run_id)
        code = await self.call(run_code, self.ws, run_id)
        self.send(
            m.RunCodeOut(
                run_id=code.run_id,
                notebook_artifact=code.notebook_artifact,
                contents_path=self._contents_path(code.notebook_file),
                notebook=code.notebook,
                cell=code.cell,
            )
        )

    def _contents_path(self, file: Path | None) -> str | None:
        root = getattr(self.contents_manager, "root_dir", None)
        if file is None or not root:
            return None
        try:
            return file.resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:  # outside the server's root: the Lab opens a copy
            return None


def _check_run_id(run_id: str) -> None:
    if not re.fullmatch(r"[0-9a-fA-F]{1,64}", run_id):
        raise InvalidInput(f"{run_id!r} is not a run id (a run id is hexadecimal, like 3f2a9c...).")


# -- endpoints --------------------------------------------------------------------------------------------------------
def _deployment(info: Any, live: dict[str, Any]) -> m.DeploymentOut:
    stats = live.get(info.name)
    return m.DeploymentOut(
        **{k: v for k, v in info.to_dict().items() if k != "endpoint"},
        live=None if stats is None else m.LiveOut(**{k: v for k, v in stats.to_dict().items() if k != "deployment"}),
    )


class _EndpointHandler(MlopsHandler):
    def endpoint_out(self, info: Any) -> m.EndpointOut:
        """The endpoint with each deployment's live figures (none when its router does not answer)."""
        live = self.mlops.live.read(info)
        return m.EndpointOut(
            name=info.name,
            status=info.status,
            scoring_uri=info.scoring_uri,
            auth=info.auth,
            traffic=info.traffic,
            mirror=info.mirror,
            deployments=[_deployment(d, live) for d in info.deployments],
            note=info.note,
        )


class EndpointsHandler(_EndpointHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        def read() -> m.EndpointList:
            return m.EndpointList(endpoints=[self.endpoint_out(info) for info in self.ws.endpoints.list()])

        self.send(await self.call(read))


class EndpointHandler(_EndpointHandler):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        self.send(await self.call(lambda: self.endpoint_out(self.ws.endpoints.show(name))))

    @tornado.web.authenticated
    async def patch(self, name: str) -> None:
        req = self.body(m.UpdateEndpointRequest)

        def update() -> m.EndpointOut:
            return self.endpoint_out(self.ws.endpoints.set_split(name, traffic=req.traffic, mirror=req.mirror))

        self.send(await self.call(update))


class EndpointInvokeHandler(MlopsHandler):
    @tornado.web.authenticated
    async def post(self, name: str) -> None:
        req = self.body(m.InvokeRequest)
        response = await self.call(self.ws.endpoints.invoke, name, req.data, deployment=req.deployment)
        self.send(m.InvokeOut(response=response))


class EndpointLogsHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        q = self.query(m.LogsQuery)
        text = await self.call(self.ws.endpoints.logs, name, q.deployment, lines=q.lines)
        self.send(m.EndpointLogs(endpoint=name, deployment=q.deployment, text=text))


class EndpointDeploymentsHandler(MlopsHandler):
    @tornado.web.authenticated
    async def post(self, name: str) -> None:
        req = self.body(m.DeployRequest)
        info = await self.call(self.ws.endpoints.deploy, name, req.name, req.model, resources=req.resources)
        self.set_header("Location", url_path_join(self.base_url, API_PREFIX, "endpoints", quote(name)))
        self.send(_deployment(info, {}), status=201)


# -- pipelines --------------------------------------------------------------------------------------------------------
class PipelinesHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        from jupyter_mlops.pipelines import history

        pipelines = await self.call(history.list_pipelines, self.ws)
        self.send(m.PipelineList(pipelines=[m.PipelineOut.model_validate(p.to_dict()) for p in pipelines]))


class PipelineRunsHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        from jupyter_mlops.pipelines import history

        q = self.query(m.PipelineRunsQuery)
        runs = await self.call(history.runs, self.ws, name, max_results=q.max_results)
        self.send(m.PipelineRunList(runs=[m.PipelineRunOut.model_validate(r.to_dict()) for r in runs]))


# -- monitors ---------------------------------------------------------------------------------------------------------
def _monitor(record: Any) -> m.MonitorOut:
    return m.MonitorOut.model_validate(record.to_dict())


class MonitorsHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        monitors = await self.call(self.ws.monitors.list)
        self.send(m.MonitorList(monitors=[_monitor(r) for r in monitors]))


class MonitorHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        self.send(_monitor(await self.call(self.ws.monitors.get, name)))


class MonitorReportHandler(MlopsHandler):
    """The evidently report as a page of its own; the Lab shows it in a sandboxed iframe (scripts, no origin)."""

    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        """The last run's report; ``?run=RUN_ID`` one run's (a point of the Monitor dashboard links to it)."""
        from jupyter_mlops.monitoring.reports import last_report_html, run_report_html

        run_id = self.get_query_argument("run", None)
        if run_id:
            page = await self.call(run_report_html, self.ws, name, run_id)
        else:
            page = await self.call(last_report_html, self.ws, name)
        self.set_header("Content-Security-Policy", "sandbox allow-scripts")
        self.finish(page, set_content_type="text/html; charset=UTF-8")


# -- events -----------------------------------------------------------------------------------------------------------
class EventsHandler(MlopsHandler):
    """Server-sent events: each CloudEvent as one ``data:`` line; a comment line every ``keepalive`` seconds."""

    keepalive = 15.0
    _queue: asyncio.Queue[m.CloudEvent | None] | None = None

    @tornado.web.authenticated
    async def get(self) -> None:
        bus = self.mlops.events
        await self.call(lambda: None)  # the stores open before the follower of the event log reads them
        await self.mlops.watcher.start()
        queue = self._queue = bus.subscribe()
        try:
            self.set_header("Content-Type", "text/event-stream")
            self.set_header("Cache-Control", "no-cache")
            self.set_header("X-Accel-Buffering", "no")
            self.write("retry: 3000\n\n")
            last = self.request.headers.get("Last-Event-ID")
            for event in await self.call(recent, self.ws, after=last) if last else []:
                self.write(_sse(event))
            await self.flush()
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), timeout=self.keepalive)
                    if event is None:  # the client went away
                        return
                    self.write(_sse(event))
                except asyncio.TimeoutError:
                    self.write(": keepalive\n\n")
                await self.flush()
        except StreamClosedError:
            pass
        finally:
            bus.unsubscribe(queue)

    def on_connection_close(self) -> None:
        if self._queue is not None:
            self._queue.put_nowait(None)
        super().on_connection_close()


class RecentEventsHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        q = self.query(m.EventsQuery)
        self.send(m.EventList(events=await self.call(recent, self.ws, after=q.after, limit=q.limit)))


def _sse(event: m.CloudEvent) -> str:
    return f"id: {event.id}\ndata: {event.model_dump_json()}\n\n"


# -- the route table: the release gates' handlers derive from MlopsHandler, so they are imported once it exists ----
from jupyter_mlops.server.monitor_handlers import ROUTES as MONITOR_ROUTES  # noqa: E402
from jupyter_mlops.server.release_handlers import ROUTES as RELEASE_ROUTES  # noqa: E402
from jupyter_mlops.server.rollout_handlers import ROUTES as ROLLOUT_ROUTES  # noqa: E402
from jupyter_mlops.server.series_handlers import ROUTES as SERIES_ROUTES  # noqa: E402

ROUTES: list[tuple[str, type[MlopsHandler]]] = [
    ("models", ModelsHandler),
    ("models/{name}", ModelHandler),
    ("models/{name}/versions", ModelVersionsHandler),
    ("models/{name}/versions/{version}", ModelVersionHandler),
    ("models/{name}/aliases/{alias}", ModelAliasHandler),
    *RELEASE_ROUTES,
    ("runs", RunsHandler),
    ("runs/{run_id}", RunHandler),
    ("runs/{run_id}/code", RunCodeHandler),
    ("endpoints", EndpointsHandler),
    ("endpoints/{name}", EndpointHandler),
    ("endpoints/{name}/invoke", EndpointInvokeHandler),
    ("endpoints/{name}/logs", EndpointLogsHandler),
    ("endpoints/{name}/deployments", EndpointDeploymentsHandler),
    *SERIES_ROUTES,
    *ROLLOUT_ROUTES,
    ("pipelines", PipelinesHandler),
    ("pipelines/{name}/runs", PipelineRunsHandler),
    ("monitors", MonitorsHandler),
    ("monitors/{name}", MonitorHandler),
    ("monitors/{name}/report", MonitorReportHandler),
    *MONITOR_ROUTES,
    ("events", EventsHandler),
    ("events/recent", RecentEventsHandler),
]


def route_pattern(template: str) -> str:
    """``models/{name}`` → ``/mlops/api/models/(?P<name>[^/]+)`` (relative to the server's base URL)."""
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return "/" + API_PREFIX + "/" + pattern + "/?"


def handlers() -> list[tuple[str, type[MlopsHandler]]]:
    return [(route_pattern(template), handler) for template, handler in ROUTES]
