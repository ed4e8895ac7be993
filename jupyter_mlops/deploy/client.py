"""The data plane seen from the control plane: a POST to an endpoint's ``/score`` and a health probe.

An endpoint's refusal maps to the package's errors (400: InvalidInput, 404: NotFound, any other status:
EndpointError) with the endpoint's own message; no answer at all is BackendUnavailable.
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from typing import Any

from jupyter_mlops.exceptions import BackendUnavailable, EndpointError, InvalidInput, NotFound


def score(
    url: str, data: Any, *, endpoint: str, key: str | None = None, deployment: str | None = None, timeout: float = 60
) -> Any:
    """POST ``data`` (a dict/list in MLflow's JSON formats, a DataFrame, or a JSON string) to ``url`` (the
    endpoint's root); ``deployment`` bypasses the traffic split."""
    if hasattr(data, "to_dict") and hasattr(data, "columns"):
        data = {"dataframe_split": data.to_dict(orient="split", index=False)}
    body = data.encode() if isinstance(data, str) else json.dumps(data).encode()
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if deployment:
        headers["mlops-model-deployment"] = deployment
    request = urllib.request.Request(url + "/score", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        message = exc.read().decode(errors="replace")
        with contextlib.suppress(ValueError, KeyError, TypeError):
            message = json.loads(message)["message"]
        error = {400: InvalidInput, 404: NotFound}.get(exc.code, EndpointError)
        raise error(f"{endpoint} answered {exc.code}: {message}") from exc
    except urllib.error.URLError as exc:
        raise BackendUnavailable(f"Endpoint {endpoint} does not answer at {url}: {exc.reason}") from exc


def answers(url: str, timeout: float = 1.0) -> bool:
    """Whether ``url`` answers 200 (a worker that is not listening yet does not)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


__all__ = ["answers", "score"]
