"""What an automation does for an event: checked when it is created, run with the event's fields filled in.

An action is a small dict, so it can be stored, listed and written in ``automations.yaml``:

    {"pipeline": "pipelines/retrain.yaml", "parameters": {"reason": "${type}"}}
    {"evaluate": "${data.modelName}:${data.modelVersion}", "data": "holdout.parquet", "targets": "label"}
    {"promote": "${data.modelName}:${data.modelVersion}", "alias": "champion"}
    {"rollout": "churn", "deployment": "green", "model": "${data.modelName}:${data.modelVersion}", "steps": [10, 100]}
    {"notify": "Drift on ${subject}: ${data.driftShare}"}

``${...}`` reads the event: ``id``, ``type``, ``subject``, ``time`` or ``data.KEY[.KEY...]``. A notification is an
``automation.notification`` event: subscriptions deliver it (webhook, e-mail) and the Lab shows it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops.exceptions import InvalidInput

if TYPE_CHECKING:
    from jupyter_mlops.events.envelope import Event
    from jupyter_mlops.workspace import Workspace

KINDS = ("pipeline", "evaluate", "promote", "rollout", "notify")
OPTIONS = {  # what each kind takes besides its own key
    "pipeline": {"parameters"},
    "evaluate": {"data", "targets", "thresholds", "baseline"},
    "promote": {"alias", "reason"},
    "rollout": {"deployment", "model", "steps", "bake", "guards", "promote"},  # the endpoint is the kind's value
    "notify": set(),
}
_FIELD = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)\}")


def check(action: Any, base: Path) -> dict[str, Any]:
    """The action as stored (paths made absolute against ``base``), or an error naming what is wrong."""
    if not isinstance(action, dict):
        raise InvalidInput(f"An action is a dict such as {{'notify': 'text'}}, not {type(action).__name__}.")
    kinds = [k for k in KINDS if k in action]
    if len(kinds) != 1:
        raise InvalidInput(f"An action names exactly one of {', '.join(KINDS)}; this one names {kinds or 'none'}.")
    kind = kinds[0]
    unknown = sorted(set(action) - {kind} - OPTIONS[kind])
    if unknown:
        allowed = ", ".join(sorted(OPTIONS[kind])) or "nothing else"
        raise InvalidInput(f"A {kind} action takes {allowed}; not {', '.join(unknown)}.")
    if not isinstance(action[kind], str) or not action[kind].strip():
        raise InvalidInput(f"{kind}: give a text (a path, a NAME:VERSION or a message), not {action[kind]!r}.")
    checked = dict(action)
    if kind == "pipeline":
        spec = _absolute(action["pipeline"], base)
        if "${" not in action["pipeline"] and not spec.is_file():
            raise InvalidInput(f"pipeline: no pipeline spec at {spec}.", path=str(spec))
        checked["pipeline"] = str(spec)
        if not isinstance(action.get("parameters", {}), dict):
            raise InvalidInput("pipeline: parameters is a dict of NAME: VALUE (values may use ${data.KEY}).")
    if kind == "rollout" and not isinstance(action.get("deployment"), str):
        raise InvalidInput("rollout: name the deployment to roll out with deployment: NAME (the endpoint is rollout:).")
    if kind == "evaluate":
        if "data" not in action:
            raise InvalidInput("evaluate: name the held-out rows to score both versions on with data: FILE.")
        checked["data"] = str(_absolute(action["data"], base))
    return checked


def run(ws: Workspace, action: dict[str, Any], event: Event, automation: str) -> dict[str, Any]:
    """Do the action for ``event``; returns what it produced (run ids, versions, the verdict)."""
    filled = fill(action, event)
    if "pipeline" in filled:
        record = ws.pipelines.run(filled["pipeline"], parameters=filled.get("parameters") or None)
        return {"pipeline_run_id": record.run_id, "status": record.status}
    if "evaluate" in filled:
        evaluation = ws.release.evaluate(
            filled["evaluate"],
            filled["data"],
            baseline=filled.get("baseline", "champion"),
            targets=filled.get("targets", "label"),
            thresholds=filled.get("thresholds"),
        )
        return {"candidate": evaluation.candidate, "passed": evaluation.passed, "run_id": evaluation.run_id}
    if "promote" in filled:
        from jupyter_mlops.refs import ModelRef

        ref = ModelRef.parse(filled["promote"])
        moved = ws.release.promote(
            ref.name, ref.selector, filled.get("alias", "champion"), reason=filled.get("reason", automation)
        )
        return {"model": moved.model, "version": moved.version, "alias": moved.alias}
    if "rollout" in filled:
        options = {k: filled[k] for k in ("model", "steps", "bake", "guards", "promote") if k in filled}
        started = ws.rollouts.start(filled["rollout"], filled["deployment"], **options)
        return {"rollout_id": started.id, "endpoint": started.endpoint, "state": started.state}
    message = str(filled["notify"])
    sent = ws.events.emit(
        "automation.notification",
        f"automations/{automation}",
        {"automation": automation, "message": message, "eventId": event.id, "eventType": event.type},
    )
    return {"message": message, "notification": sent.id if sent else None}


def fill(value: Any, event: Event) -> Any:
    """``value`` with every ``${field}`` replaced from the event; a whole-string field keeps its type."""
    if isinstance(value, dict):
        return {k: fill(v, event) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, event) for v in value]
    if not isinstance(value, str):
        return value
    whole = _FIELD.fullmatch(value)
    if whole:
        return field(event, whole.group(1))
    return _FIELD.sub(lambda m: str(field(event, m.group(1))), value)


def field(event: Event, path: str) -> Any:
    """An event's field by dotted path (``data.modelName``); an error names the fields it has."""
    head, _, rest = path.partition(".")
    if head != "data":
        if head not in ("id", "type", "subject", "time", "source") or rest:
            raise InvalidInput(f"${{{path}}}: an event has id, type, subject, time, source and data.KEY.")
        return getattr(event, head)
    value: Any = event.data
    for key in rest.split(".") if rest else []:
        if not isinstance(value, dict) or key not in value:
            keys = ", ".join(value) if isinstance(value, dict) else "none"
            raise InvalidInput(f"${{{path}}}: the {event.type} event has no {key!r} here (keys: {keys}).")
        value = value[key]
    return value


def _absolute(text: str, base: Path) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() or "${" in text else (base / path).resolve()


__all__ = ["KINDS", "check", "field", "fill", "run"]
