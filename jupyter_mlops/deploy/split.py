"""Change an endpoint's traffic and mirror in one step, in the order its rules allow.

A deployment is either live or mirrored, so moving one from the mirror to live traffic needs the mirror changed
first, and the other way round the traffic first. Both rules stay the control plane's (``Endpoints.set_traffic``,
``Endpoints.set_mirror``); this only picks the order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jupyter_mlops.deploy.endpoints import EndpointInfo
    from jupyter_mlops.workspace import Workspace


def set_split(
    ws: Workspace, endpoint: str, *, traffic: dict[str, int] | None = None, mirror: dict[str, int] | None = None
) -> EndpointInfo:
    """Set ``traffic`` and/or ``mirror`` (None: unchanged). If the second change is refused, the first stays."""
    info = ws.endpoints.show(endpoint)
    mirrored = {name for name, share in info.mirror.items() if share > 0}
    mirror_first = mirror is not None and any((traffic or {}).get(name, 0) > 0 for name in mirrored)
    steps = [("mirror", mirror), ("traffic", traffic)] if mirror_first else [("traffic", traffic), ("mirror", mirror)]
    for kind, shares in steps:
        if shares is None:
            continue
        if kind == "traffic":
            info = ws.endpoints.set_traffic(endpoint, shares)
        else:
            info = ws.endpoints.set_mirror(endpoint, shares)
    return info
