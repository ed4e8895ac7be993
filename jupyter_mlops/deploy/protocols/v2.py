"""The Open Inference Protocol v2 over REST (KServe v2, Triton, MLServer), served by every endpoint:

- ``GET /v2/health/live``, ``GET /v2/health/ready``, ``GET /v2`` (server metadata);
- ``GET /v2/models/{name}`` (model metadata), ``GET /v2/models/{name}/ready``, ``POST /v2/models/{name}/infer``,
  each also under ``/v2/models/{name}/versions/{version}/...``.

``{name}`` is the endpoint (the traffic split picks the deployment, and mirroring applies) or
``endpoint/deployment`` (that deployment, as the ``mlops-model-deployment`` header routes); with a version, the
deployment serving that version of the model. Refusals are ``{"error": "..."}``. Model routes need the endpoint's
key; health and server metadata do not (probes carry no key).
"""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from jupyter_mlops.deploy.protocols import tensors
from jupyter_mlops.deploy.protocols.describe import UNKNOWN, Description, describe_scorer, from_metadata
from jupyter_mlops.deploy.protocols.wire import Translated, Wire

if TYPE_CHECKING:
    from starlette.requests import Request

    from jupyter_mlops.deploy.app import ScoringApp, Served, Table

EXTENSIONS = ["binary_tensor_data"]


class V2Wire(Wire):
    """``POST /v2/models/{name}/infer``: input tensors in, output tensors out."""

    def __init__(self, service: ScoringApp | None = None, model: str = "", version: str | None = None) -> None:
        self.service = service
        self.model = model
        self.version = version
        self.description = UNKNOWN  # the deployment's, once a request is translated

    def refuse(self, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        return JSONResponse({"error": message}, status_code=status, headers=headers or None)

    def unsupported(self, content_type: str | None, served: Served) -> str | None:
        return None  # a JSON body, or the binary extension's JSON header and tensors: read whatever the type

    async def translate(self, body: bytes, request: Request, served: Served) -> Translated:
        """A scorer in this process takes the parsed inputs as they are (its body, for collection or the mirror,
        is written when they read it); a deployment process gets them written as JSON, floats as they came.
        Floats stay their text (``RawFloat``) unless the scorer needs them parsed: writing floats back into JSON
        costs more than the rest of the translation, and numpy reads the text at C speed."""
        assert self.service is not None
        scorer = served.scorer
        in_process = scorer is not None and scorer.takes_payload
        raw_floats = not in_process or (scorer is not None and scorer.numbers_as_text)
        request_ = tensors.read_request(body, request.headers.get(tensors.HEADER_LENGTH), raw_floats=raw_floats)
        description = self.service.descriptions.get(_key(served)) or await describe(self.service, served)
        self.description = description  # for the answer
        if not in_process:
            body = tensors.to_body(request_.inputs, description.columns)
            return Translated(body, "application/json", request_, request_.id)
        payload = tensors.to_payload(request_.inputs, description.columns)
        booleans = any(tensor.datatype == "BOOL" for tensor in request_.inputs)
        return Translated(
            None,
            "application/json",
            request_,
            request_.id,
            payload=payload,
            encode=lambda: tensors.encode(payload),
            booleans=booleans,
            # a JSON request is collected as it came (a monitor translates it when it reads it); binary tensors are
            # not JSON: their payload is written
            collect_as="v2" if request.headers.get(tensors.HEADER_LENGTH) is None else None,
        )

    def answer(
        self, output: Any, text: str, served: Served, translated: Translated, headers: dict[str, str]
    ) -> Response:
        assert self.service is not None
        if output is None:  # a deployment process answered
            output = json.loads(text)
        predictions = output.get("predictions", output) if isinstance(output, dict) else output
        description = self.description
        version = self.version or _version(served)
        request = translated.context
        if isinstance(output, dict) and len(output) == 1 and predictions is not output:
            fast = tensors.flat_response(self.model, version, request, predictions, text, description.outputs)
            if fast is not None:
                return Response(fast, media_type="application/json", headers=headers)
        outputs = tensors.to_outputs(predictions, description.outputs)
        body, extra = tensors.write_response(self.model, version, request, outputs)
        media_type = extra.pop("content-type")
        return Response(body, media_type=media_type, headers={**headers, **extra})


WIRE = V2Wire()


def _key(served: Served) -> Any:
    return served.scorer if served.scorer is not None else served.upstream


def _version(served: Served) -> str | None:
    """The model version a deployment serves (``name:version``)."""
    model, _, version = served.model.rpartition(":")
    return version if model and version else None


async def describe(service: ScoringApp, served: Served) -> Description:
    """What ``served`` takes and returns; worked out once per loaded model (a deployment process is asked)."""
    key = _key(served)
    found = service.descriptions.get(key)
    if found is not None:
        return found
    if served.scorer is not None:
        found = describe_scorer(served.scorer)
    else:
        assert served.upstream is not None
        payload = await served.upstream.describe(served.name)
        if payload is None:
            return UNKNOWN  # asked again next time: it may be starting
        found = from_metadata(payload)
    service.descriptions[key] = found
    return found


def resolve(service: ScoringApp, table: Table, path: str) -> tuple[str, str | None, str | None, str] | str:
    """(model name as asked, the deployment it names or None for the traffic split, version, action) of a
    ``/v2/models/...`` path; a 404's message when it names nothing served here."""
    action = ""
    for suffix in ("/infer", "/ready"):
        if path.endswith(suffix):
            path, action = path[: -len(suffix)], suffix[1:]
            break
    version = None
    name, marker, given = path.rpartition("/versions/")
    if marker and given and "/" not in given:
        path, version = name, given
    endpoint, _, deployment = path.partition("/")
    known = service.endpoint or next(iter(table.served), "")
    if endpoint != known or (deployment and deployment not in table.served) or not path:
        names = ", ".join(f"{known}/{d}" for d in table.served) or "none"
        return f"No model named {path!r} here: ask for {known!r} (its traffic split) or one deployment: {names}."
    named = deployment or None
    if version is not None:
        candidates = [named] if named else [n for n, _ in table.live] + list(table.served)
        serving = [n for n in candidates if n is not None and _version(table.served[n]) == version]
        if not serving:
            served = ", ".join(f"{n}: {_version(s)}" for n, s in table.served.items())
            return f"No deployment of {path!r} serves version {version}; versions served: {served or 'none'}."
        named = serving[0]
    return path, named, version, action


def _main(table: Table) -> str | None:
    """The deployment that answers most of the endpoint's traffic (whose metadata the endpoint's is)."""
    best, previous, share = None, 0.0, -1.0
    for name, upto in table.live:
        if upto - previous > share:
            best, share = name, upto - previous
        previous = upto
    return best or next(iter(table.served), None)


def routes(service: ScoringApp) -> list[Route]:
    """The v2 routes, served by ``service``; the model routes (where ``infer`` is) first."""
    from jupyter_mlops import __version__

    async def live(_: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(_: Request) -> Response:
        loaded = service.table.version > 0
        return JSONResponse({"ready": loaded}, status_code=200 if loaded else 503)

    async def server(_: Request) -> Response:
        return JSONResponse({"name": "jupyter-mlops", "version": __version__, "extensions": EXTENSIONS})

    resolved: dict[str, Any] = {}  # path -> what it names, for the table they were resolved in
    resolved_in: list[Table | None] = [None]

    def resolved_path(table: Table, path: str) -> tuple[str, str | None, str | None, str] | str:
        """``resolve``, once per path and table (a table is replaced whole, never changed)."""
        if resolved_in[0] is not table:
            resolved.clear()
            resolved_in[0] = table
        found = resolved.get(path)
        if found is None:
            found = resolve(service, table, path)
            if len(resolved) < 256:  # paths a client makes up are not kept
                resolved[path] = found
        return found

    async def models(request: Request) -> Response:
        table = service.table
        found = resolved_path(table, request.path_params["path"])
        if isinstance(found, str):
            return WIRE.refuse(404, found)
        name, named, version, action = found
        if action == "infer":
            if request.method != "POST":
                return WIRE.refuse(405, f"{request.method} is not allowed on {request.url.path}; allowed: POST.")
            return await service.handle(request, V2Wire(service, name, version), named)
        if request.method != "GET":
            return WIRE.refuse(405, f"{request.method} is not allowed on {request.url.path}; allowed: GET.")
        if table.auth_key is not None:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {table.auth_key}".encode()):
                return WIRE.refuse(401, "Missing or wrong key: send 'Authorization: Bearer KEY'.")
        if action == "ready":
            is_ready = named is not None or bool(table.live)
            return JSONResponse({"name": name, "ready": is_ready}, status_code=200 if is_ready else 503)
        deployment = named or _main(table)
        if deployment is None:
            return WIRE.refuse(503, "No deployment is loaded yet.")
        served = table.served[deployment]
        description = await describe(service, served)
        deployments = [named] if named else [n for n, _ in table.live] or [deployment]
        versions = sorted({v for n in deployments if (v := _version(table.served[n])) is not None})
        return JSONResponse(
            {
                "name": name,
                "versions": [version] if version else versions,
                "platform": description.platform,
                "inputs": [spec.to_json() for spec in description.inputs],
                "outputs": [spec.to_json() for spec in description.outputs],
            }
        )

    return [
        Route("/v2/models/{path:path}", models, methods=["GET", "POST"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route("/v2", server, methods=["GET"]),
    ]
