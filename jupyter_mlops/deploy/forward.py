"""A deployment served by its own process (its own environment, or a container): the router forwards to it.

The deployment process runs the same entrypoint as a container (``python -m jupyter_mlops.deploy.serve``) on
127.0.0.1 behind a per-deployment key, so only the router reaches it. Its answers (status and JSON body) are
passed through unchanged, and the caller's Content-Type is passed on: the deployment process decides what it
reads (a scoring script reads any type, a model JSON). Every protocol reaches it as ``/score``: the router
translates ``/invocations`` and v2 requests first, and asks the process once for its v2 model metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jupyter_mlops.exceptions import BackendUnavailable

CONNECTIONS = 64


@dataclass
class Answer:
    status: int
    body: bytes


class Upstream:
    """Keep-alive HTTP clients to one deployment process: async for requests, sync for mirrored copies."""

    def __init__(self, url: str, key: str | None, timeout_s: float) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.headers = {"content-type": "application/json"}
        if key:
            self.headers["authorization"] = f"Bearer {key}"
        limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
        self._async = httpx.AsyncClient(timeout=timeout_s, limits=limits)
        self._sync = httpx.Client(timeout=timeout_s)
        self._described: dict[str, Any] = {}

    async def score(self, body: bytes, request_id: str, content_type: str | None = None) -> Answer:
        import httpx

        headers = {**self.headers, "mlops-request-id": request_id}
        if content_type is not None:
            headers["content-type"] = content_type
        try:
            response = await self._async.post(self.url + "/score", content=body, headers=headers)
        except httpx.TimeoutException as exc:  # the router answers 504, as for a slow in-process model
            raise TimeoutError(str(exc)) from exc
        except httpx.HTTPError as exc:
            raise BackendUnavailable(f"The deployment process at {self.url} does not answer: {exc}.") from exc
        return Answer(response.status_code, response.content)

    def score_sync(self, body: bytes) -> Any:
        response = self._sync.post(self.url + "/score", content=body, headers=self.headers)
        response.raise_for_status()
        return response.json()

    async def describe(self, deployment: str) -> Any:
        """The process's own v2 model metadata of ``deployment`` (what the model takes and returns), or None when
        it does not answer it; kept once it has."""
        import httpx

        if deployment in self._described:
            return self._described[deployment]
        try:
            response = await self._async.get(f"{self.url}/v2/models/{deployment}", headers=self.headers)
            payload = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None
        if payload is not None:
            self._described[deployment] = payload
        return payload

    def ready(self) -> bool:
        import httpx

        try:
            return self._sync.get(self.url + "/ready", headers=self.headers, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False
