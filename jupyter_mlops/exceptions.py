"""The errors jupyter-mlops raises: every exception class of the package is declared here.

Every error derives from ``MlopsError`` and knows the HTTP status a REST face answers with::

    MlopsError (500)
    ├── InvalidInput (400)           bad argument, unparseable filter, unsupported model type
    │   ├── FilterSyntaxError        a model filter that is not ``TagName=TagValue,...``
    │   ├── UnsupportedMediaType (415)  a request body in a format the route does not read
    │   ├── UsageError               a command line that does not parse (carries the usage)
    │   └── BuildFailed              an environment's venv or requirements could not be built
    ├── NotFound (404)               unknown model, version, run, endpoint, ...
    ├── Conflict (409)               the change would lose or break something
    │   ├── ModelInUseError          a live deployment or an alias still uses the model
    │   └── PromotionRefused         the release policy's requirements for the alias are not met
    ├── Interrupted (500)            Ctrl-C or SIGTERM stopped a run; it is recorded as KILLED
    │   └── Cancelled                a step or trial stopped because its run was interrupted
    ├── EndpointError (502)          an endpoint (its workers, a deployment process or container) failed on its own
    │   └── ImageBuildFailed         ``docker build`` of a deployment's image failed
    └── BackendUnavailable (503)     the tracking server or the metadata store does not answer
        └── DockerUnavailable        no Docker engine answers

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


class UnsupportedMediaType(InvalidInput):
    """A request body in a format the route does not read."""

    http_status = 415


class UsageError(InvalidInput):
    """The command line does not parse; the message carries the usage of the (sub)command."""


class BuildFailed(InvalidInput):
    """Creating the venv or installing the requirements failed; ``data['output']`` holds pip's last lines."""


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


class PromotionRefused(Conflict):
    """The version does not meet what the release policy requires for the alias; ``missing`` lists each gap."""

    def __init__(self, message: str, *, missing: list[str], **data: Any) -> None:
        super().__init__(message, missing=missing, **data)
        self.missing = missing


class Interrupted(MlopsError):
    """The run was stopped by Ctrl-C or SIGTERM; it is recorded as KILLED."""


class Cancelled(Interrupted):
    """A pipeline step (or sweep trial) stopped waiting or running because its run was interrupted."""


class EndpointError(MlopsError):
    """An endpoint (its workers, a deployment process or container, a model it loads) failed on its own."""

    http_status = 502


class ImageBuildFailed(EndpointError):
    """``docker build`` failed; the message ends with the last lines of the build log."""


class BackendUnavailable(MlopsError):
    """A store (MLflow tracking server, metadata database) does not answer."""

    http_status = 503


class DockerUnavailable(BackendUnavailable):
    """No Docker engine answers (or the docker package is missing); the message says how to get one."""


__all__ = [
    "BackendUnavailable",
    "BuildFailed",
    "Cancelled",
    "Conflict",
    "DockerUnavailable",
    "EndpointError",
    "FilterSyntaxError",
    "ImageBuildFailed",
    "Interrupted",
    "InvalidInput",
    "MlopsError",
    "ModelInUseError",
    "NotFound",
    "PromotionRefused",
    "UnsupportedMediaType",
    "UsageError",
]
