"""The errors jupyter-mlops raises.

Every error derives from ``MlopsError`` and knows the HTTP status a REST face answers with::

    MlopsError (500)
    ├── InvalidInput (400)         bad argument, unparseable filter, unsupported model type
    │   └── FilterSyntaxError
    ├── NotFound (404)             unknown model, version, run
    ├── Conflict (409)             the change would lose something
    │   └── ModelInUseError        a live deployment or an alias still uses the model
    └── BackendUnavailable (503)   the tracking server or the metadata store does not answer

Each carries the data needed to act on it (``.data``) next to a message that says how to fix it.
"""

from __future__ import annotations

from typing import Any


class MlopsError(Exception):
    """Base class of every jupyter-mlops error."""

    http_status = 500

    def __init__(self, message: str, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    def __str__(self) -> str:
        return self.message


class InvalidInput(MlopsError):
    """The caller passed something we cannot use; the message says what and how to fix it."""

    http_status = 400


class FilterSyntaxError(InvalidInput):
    """A model filter does not follow the ``TagName=TagValue,...`` syntax."""


class NotFound(MlopsError):
    """The named thing does not exist; ``data`` lists what does."""

    http_status = 404


class Conflict(MlopsError):
    """The change is refused because it would lose or break something."""

    http_status = 409


class ModelInUseError(Conflict):
    """A model version cannot be deleted while deployments or aliases use it."""

    def __init__(self, message: str, *, deployments: list[str], aliases: list[str] | None = None) -> None:
        super().__init__(message, deployments=deployments, aliases=aliases or [])
        self.deployments = deployments
        self.aliases = aliases or []


class BackendUnavailable(MlopsError):
    """A store (MLflow tracking server, metadata database) does not answer."""

    http_status = 503


__all__ = [
    "BackendUnavailable",
    "Conflict",
    "FilterSyntaxError",
    "InvalidInput",
    "MlopsError",
    "ModelInUseError",
    "NotFound",
]
