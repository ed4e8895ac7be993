"""The one name rule for everything a user names: models, endpoints, deployments, monitors, pipelines, datasets,
batch endpoints, subscriptions.

A name becomes part of URLs, file names, MLflow filters, HTTP headers, container names and Kubernetes manifests,
so it is kept to what all of them take: 1 to 64 characters, ASCII letters, digits, ``.``, ``_`` and ``-``,
starting with a letter or a digit. Endpoints and deployments also become DNS labels (containers, KServe), so they
are lower-case and take no ``.`` or ``_``. Every face calls :func:`check_name` before anything is written.
"""

from __future__ import annotations

import re

from jupyter_mlops.exceptions import InvalidInput

MAX_LENGTH = 64
RULE = f"1 to {MAX_LENGTH} characters: letters, digits, '.', '_' and '-', starting with a letter or a digit"
DNS_RULE = f"1 to {MAX_LENGTH - 1} characters: lower-case letters, digits and '-', starting with a letter or a digit"
PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_LENGTH - 1}}}$"
DNS_PATTERN = rf"^[a-z0-9][a-z0-9-]{{0,{MAX_LENGTH - 2}}}$"
_NAME = re.compile(PATTERN)
_DNS = re.compile(DNS_PATTERN)
DNS_KINDS = frozenset({"endpoint", "deployment"})


def check_name(name: object, kind: str) -> str:
    """``name`` if it follows the rule for ``kind`` (``model``, ``endpoint``, ...); else an InvalidInput that
    names the rule and, where it can, what is wrong."""
    dns = kind in DNS_KINDS
    rule = DNS_RULE if dns else RULE
    if isinstance(name, str) and (_DNS if dns else _NAME).fullmatch(name):
        return name
    shown = (
        repr(name)
        if not isinstance(name, str) or len(name) <= 80
        else repr(name[:80]) + f"... ({len(name)} characters)"
    )
    raise InvalidInput(f"{shown} is not a valid {kind} name{_why(name, dns)}: use {rule}.", kind=kind, rule=rule)


def _why(name: object, dns: bool) -> str:
    if not isinstance(name, str):
        return f" (a {type(name).__name__}, not a string)"
    if not name:
        return " (it is empty)"
    if len(name) > MAX_LENGTH - (1 if dns else 0):
        return f" (it has {len(name)} characters)"
    bad = next((c for c in name if not c.isprintable()), None)
    if bad is not None:
        return f" (it holds the control character {bad!r})"
    allowed = "-" if dns else "._-"
    bad = next((c for c in name if not (c.isascii() and (c.isalnum() or c in allowed)) or (dns and c.isupper())), None)
    if bad is not None:
        return f" (it holds {bad!r})"
    return ""


__all__ = ["DNS_RULE", "RULE", "check_name"]
