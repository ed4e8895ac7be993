"""The pure parts of a rollout: checking what was asked, the split of each step, and the guard figures.

Kept apart from the controller so every rule can be tested without processes, and so a refusal happens before
anything is recorded or changed.
"""

from __future__ import annotations

import itertools
import math
import re
from typing import Any

from jupyter_mlops.exceptions import InvalidInput

GUARDS = ("error_rate", "p99_ms", "min_requests")
SHADOW_GUARDS = ("agreement", "abs_diff_mean", "abs_diff_p95")  # judged in the shadow phase only
DEFAULT_GUARDS: dict[str, float] = {"error_rate": 0.01, "min_requests": 100}
DEFAULT_AGREEMENT = 0.95  # with a shadow phase and no agreement guard given (judged when the outputs are labels)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|[smh]?)$")


def check_steps(steps: Any) -> list[int]:
    """Integer percentages, strictly increasing, each from 1 to 100."""
    if isinstance(steps, (str, bytes)) or not hasattr(steps, "__iter__"):
        raise InvalidInput(f"steps is a list of traffic percentages such as [10, 50, 100], not {steps!r}.")
    values = list(steps)
    if not values:
        raise InvalidInput("steps is empty: give at least one traffic percentage, such as [10, 50, 100].")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"Each step is a whole percentage; {value!r} in {values} is not.")
        if not 1 <= value <= 100:
            raise InvalidInput(f"Each step is a percentage from 1 to 100; {value} in {values} is not.")
    for before, after in itertools.pairwise(values):
        if after <= before:
            raise InvalidInput(f"steps must increase: {after} comes after {before} in {values}.")
    return values


def parse_duration(value: Any, what: str = "bake") -> float:
    """``"5m"``, ``"30s"``, ``"500ms"``, ``"1h"`` or seconds, as seconds (0 or more)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value).strip())
        if not match:
            raise InvalidInput(f"Cannot read the {what} time {value!r}: write a number and a unit, e.g. 30s, 5m.")
        scale = {"": 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "h": 3600.0}[match.group(2)]
        seconds = float(match.group(1)) * scale
    if seconds < 0 or math.isnan(seconds):
        raise InvalidInput(f"The {what} time is 0 or more seconds, not {value!r}.")
    return seconds


def check_guards(guards: dict[str, Any] | None, *, shadow: bool = False) -> dict[str, float]:
    """The guards over their defaults (``error_rate`` 0.01, ``min_requests`` 100, and with a shadow phase
    ``agreement`` 0.95); a guard on an unknown figure is refused, naming the known ones, and a shadow guard
    (``agreement``, ``abs_diff_mean``, ``abs_diff_p95``) without a shadow phase, which alone measures it."""
    defaults = {**DEFAULT_GUARDS, **({"agreement": DEFAULT_AGREEMENT} if shadow else {})}
    if guards is None:
        return defaults
    if not isinstance(guards, dict):
        raise InvalidInput('guards is a dict of figure to threshold, e.g. {"error_rate": 0.01, "p99_ms": 50}.')
    checked = dict(defaults)  # those not given keep their defaults: a rollout is always watched for errors
    for name, threshold in guards.items():
        if name in SHADOW_GUARDS and not shadow:
            raise InvalidInput(
                f"The guard {name!r} compares mirrored answers with live ones: give a shadow phase (shadow='10m')."
            )
        if name not in GUARDS and name not in SHADOW_GUARDS:
            raise InvalidInput(f"Unknown guard {name!r}; guards: {', '.join(GUARDS + SHADOW_GUARDS)}.")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or math.isnan(threshold):
            raise InvalidInput(f"The guard {name} takes a number, not {threshold!r}.")
        if threshold < 0 or (name in ("error_rate", "agreement") and threshold > 1):
            raise InvalidInput(f"The guard {name} is out of range: {threshold!r}.")
        if name == "min_requests" and (threshold < 1 or threshold != int(threshold)):
            raise InvalidInput(f"min_requests is a whole number of requests, 1 or more, not {threshold!r}.")
        checked[name] = float(threshold)
    return checked


def split_for(percent: int, deployment: str, baseline: dict[str, int]) -> dict[str, int]:
    """``deployment`` gets ``percent``; the others of ``baseline`` share the rest in their proportions (largest
    remainders), so the split always sums to 100."""
    others = {name: share for name, share in baseline.items() if name != deployment and share > 0}
    total = sum(others.values())
    rest = 100 - percent
    if total <= 0:
        raise InvalidInput(f"No deployment besides {deployment} has live traffic to move from.")
    exact = {name: rest * share / total for name, share in others.items()}
    split = {name: math.floor(value) for name, value in exact.items()}
    left = rest - sum(split.values())
    for name in sorted(exact, key=lambda n: (split[n] - exact[n], n))[:left]:
        split[name] += 1
    split = {name: share for name, share in split.items() if share > 0}
    split[deployment] = percent
    assert sum(split.values()) == 100, split
    return split


# -- figures over a step's window -------------------------------------------------------------------------------
def counters(sample: Any) -> dict[str, dict[str, Any]]:
    """Per deployment, what a ``live.Sample`` counted so far (JSON-ready, kept in the record as a step's start)."""
    return {
        name: {
            "requests": sample.requests.get(name, 0.0),
            "errors": sample.errors.get(name, 0.0),
            "buckets": [[bound, count] for bound, count in sample.buckets.get(name, [])],
        }
        for name in set(sample.requests) | set(sample.errors) | set(sample.buckets)
    }


def window(start: dict[str, dict[str, Any]], now: dict[str, dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """Requests, errors, error rate and p99 of ``names`` together between two readings; None when the counters
    went back (a router restarted: the window starts again)."""
    from jupyter_mlops.deploy.live import histogram_quantile

    requests = errors = 0.0
    buckets: dict[float, float] = {}
    for name in names:
        before, after = start.get(name, {}), now.get(name, {})
        got = after.get("requests", 0.0) - before.get("requests", 0.0)
        failed = after.get("errors", 0.0) - before.get("errors", 0.0)
        if got < 0 or failed < 0:
            return {"reset": True}
        requests, errors = requests + got, errors + failed
        earlier = {float(b): c for b, c in before.get("buckets", [])}
        for bound, count in after.get("buckets", []):
            buckets[float(bound)] = buckets.get(float(bound), 0.0) + count - earlier.get(float(bound), 0.0)
    p99 = histogram_quantile(0.99, sorted(buckets.items())) if requests > 0 else None
    return {
        "requests": int(requests),
        "errors": int(errors),
        "error_rate": errors / requests if requests else None,
        "p99_ms": None if p99 is None else round(p99 * 1000, 3),
    }


def tripped(guards: dict[str, float], green: dict[str, Any], blue: dict[str, Any]) -> tuple[str, float, float] | None:
    """The first guard green fails (guard, figure, threshold), or None. A figure over its threshold trips it
    unless the previous deployments did as badly over the same window (then green is no worse than them)."""
    for name in ("error_rate", "p99_ms"):
        if name not in guards or green.get(name) is None:
            continue
        figure, threshold = float(green[name]), guards[name]
        theirs = blue.get(name)
        if figure > threshold and (theirs is None or not blue.get("requests") or figure > float(theirs)):
            return name, figure, threshold
    return None


def check_shadow_percent(percent: Any) -> int:
    """The share mirrored to green in the shadow phase: a whole percentage the endpoint's mirror allows."""
    from jupyter_mlops.deploy.traffic import MAX_MIRROR

    if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= MAX_MIRROR:
        raise InvalidInput(f"shadow_percent is a whole percentage from 1 to {MAX_MIRROR}, not {percent!r}.")
    return percent


# -- the shadow phase ---------------------------------------------------------------------------------------------
def shadow_window(start: dict[str, Any] | None, now: dict[str, Any] | None) -> dict[str, Any]:
    """green's shadow figures between two readings of its comparison counts (``deploy/shadow.py``): requests,
    compared, errors, error rate, p99 of its own latency, agreement and differences; ``reset`` when they went back."""
    from jupyter_mlops.deploy import shadow

    if now is None:
        now = shadow.new_counts()
    counts = shadow.difference(now, start)
    if counts is None:
        return {"reset": True}
    return shadow.figures_of(counts)


def shadow_tripped(
    guards: dict[str, float], green: dict[str, Any], blue: dict[str, Any]
) -> tuple[str, float, float] | None:
    """The first guard green fails in the shadow phase: agreement under its threshold, a difference over its
    threshold, or the mirror's own error rate and p99 as ``tripped`` judges them against the live deployments."""
    agreement = green.get("agreement_ratio")
    if "agreement" in guards and agreement is not None and agreement < guards["agreement"]:
        return "agreement", float(agreement), guards["agreement"]
    for name in ("abs_diff_mean", "abs_diff_p95"):
        figure = green.get(name)
        if name in guards and figure is not None and figure > guards[name]:
            return name, float(figure), guards[name]
    return tripped(guards, green, blue)


__all__ = [
    "DEFAULT_GUARDS",
    "GUARDS",
    "SHADOW_GUARDS",
    "check_guards",
    "check_shadow_percent",
    "check_steps",
    "counters",
    "parse_duration",
    "shadow_tripped",
    "shadow_window",
    "split_for",
    "tripped",
    "window",
]
