"""Azure ML's rules for an endpoint's traffic and mirror split, as pure functions.

Checked on the split that would result from a change, before anything is written: a refusal changes nothing, and a
deployment can move from the mirror to live traffic (or back) in one change.

- traffic: integer percentages (0 to 100) over existing deployments, summing to 0 or 100;
- mirror: at most one deployment, at most 50 %, and never one that receives live traffic.
"""

from __future__ import annotations

from typing import Any

from jupyter_mlops.exceptions import InvalidInput

MAX_MIRROR = 50


def percentages(values: dict[str, Any], names: set[str], what: str) -> dict[str, int]:
    """``values`` checked as percentages over the deployments ``names`` (``what`` names them in errors)."""
    unknown = sorted(set(values) - names)
    if unknown:
        raise InvalidInput(f"Unknown deployment(s) {', '.join(unknown)} in {what}; deployments: {sorted(names)}.")
    clean = {}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
            raise InvalidInput(f"{what} percentages are integers from 0 to 100; {name} has {value!r}.")
        clean[name] = value
    return clean


def check(traffic: dict[str, int], mirror: dict[str, int]) -> None:
    """Refuse a split that breaks a rule (the percentages themselves are already checked)."""
    total = sum(traffic.values())
    if total not in (0, 100):
        raise InvalidInput(f"Traffic percentages must sum to 0 or 100, not {total}: {traffic}.")
    mirrored = {n: p for n, p in mirror.items() if p > 0}
    if len(mirrored) > 1:
        raise InvalidInput(f"At most one deployment can be mirrored; got {sorted(mirrored)}.")
    for name, percent in mirrored.items():
        if percent > MAX_MIRROR:
            raise InvalidInput(f"At most {MAX_MIRROR}% of traffic can be mirrored; got {percent}% for {name}.")
        if traffic.get(name, 0) > 0:
            raise InvalidInput(
                f"{name} would get live traffic ({traffic[name]}%) and mirrored traffic ({percent}%): "
                "a deployment is either live or mirrored."
            )


def split(
    names: set[str],
    current: tuple[dict[str, int], dict[str, int]],
    traffic: dict[str, Any] | None = None,
    mirror: dict[str, Any] | None = None,
) -> tuple[dict[str, int], dict[str, int]]:
    """The (traffic, mirror) that results from setting ``traffic`` and/or ``mirror`` (None: keep ``current``),
    checked; a mirror of 0 % is dropped."""
    new_traffic = percentages(traffic, names, "traffic") if traffic is not None else current[0]
    new_mirror = (
        {n: p for n, p in percentages(mirror, names, "mirror").items() if p} if mirror is not None else current[1]
    )
    check(new_traffic, new_mirror)
    return new_traffic, new_mirror


__all__ = ["MAX_MIRROR", "check", "percentages", "split"]
