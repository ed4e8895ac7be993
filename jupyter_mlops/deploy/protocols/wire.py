"""A protocol's edges around the one scoring pipeline: how it reads a request into ``/score``'s body and writes the
answer and the refusals in its own shape. The base class is ``/score``'s own protocol: bodies pass as they come.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response

if TYPE_CHECKING:
    from starlette.requests import Request

    from jupyter_mlops.deploy.app import Served


class Translated:
    """A request as ``/score`` takes it: the body, its Content-Type (passed on to a deployment process), and what
    the answer needs from the original request.

    A protocol that had to parse its request to translate it may hand over the parsed ``/score`` payload instead
    (``payload``, with ``encode`` to write it as JSON): an in-process scorer then takes it as it is, rather than the
    pipeline writing JSON for the scorer to parse again. The body is written only when something reads it (a
    deployment process, the collector or the mirror, the last two off the request path)."""

    __slots__ = ("_body", "_encode", "booleans", "collect_as", "content_type", "context", "payload", "request_id")

    def __init__(
        self,
        body: bytes | None,
        content_type: str | None,
        context: Any = None,
        request_id: str | None = None,  # the protocol's own request id, used when no mlops-request-id header is given
        *,
        payload: Any = None,
        encode: Callable[[], bytes] | None = None,
        booleans: bool = True,  # whether the payload's values may hold JSON booleans (a scorer then looks for them)
        collect_as: str | None = None,  # the request is JSON of this protocol: collected as it came (see Collector)
    ) -> None:
        if body is None and (payload is None or encode is None):
            raise ValueError("a Translated without a body needs its payload and how to encode it")
        self._body = body
        self._encode = encode
        self.content_type = content_type
        self.context = context
        self.request_id = request_id
        self.payload = payload
        self.booleans = booleans
        self.collect_as = collect_as

    @property
    def body(self) -> bytes:
        """``/score``'s body, written from the payload the first time it is read."""
        if self._body is None:
            assert self._encode is not None
            self._body = self._encode()
        return self._body


class Wire:
    """``POST /score``: MLflow's JSON bodies, answered as the model answers, refusals as ``{"message": ...}``."""

    def refuse(self, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        return JSONResponse({"message": message}, status_code=status, headers=headers or None)

    def unsupported(self, content_type: str | None, served: Served) -> str | None:
        """A 415's message when this route does not read bodies of ``content_type`` for ``served``."""
        from jupyter_mlops.deploy.scoring import json_content_type

        # a deployment process (upstream) judges for itself: it may run a script
        if served.scorer is not None and served.scorer.json_only and not json_content_type(content_type):
            return f"Send JSON (Content-Type: application/json), not {content_type}."
        return None

    async def translate(self, body: bytes, request: Request, served: Served) -> Translated:
        """``/score``'s body for this request; an ``InvalidInput`` when it does not follow the protocol."""
        return Translated(body, request.headers.get("content-type"))

    def answer(
        self, output: Any, text: str, served: Served, translated: Translated, headers: dict[str, str]
    ) -> Response:
        """The answer to send, from the model's ``output`` (None when a deployment process answered) and its JSON
        ``text``."""
        return Response(text, media_type="application/json", headers=headers)

    def relay(self, status: int, body: bytes, headers: dict[str, str]) -> Response:
        """A deployment process's refusal (a ``/score`` answer), in this protocol's shape."""
        if type(self).refuse is Wire.refuse:
            return Response(body, status, headers, media_type="application/json")
        try:
            import json

            message = json.loads(body).get("message") or body.decode(errors="replace")
        except (ValueError, AttributeError):
            message = body.decode(errors="replace")
        return self.refuse(status, str(message)[:2000], headers)
