"""Rollouts: a deployment moved into live traffic in steps, watched, and rolled back by itself when a guard trips.

    ws.rollouts.start("churn", "green", model="churn:4", steps=[10, 50, 100], bake="5m",
                      guards={"error_rate": 0.01, "p99_ms": 50, "min_requests": 200}, promote=True)
    ws.rollouts.start("churn", "green", shadow="10m", guards={"agreement": 0.98})  # mirrored first
    ws.rollouts.status("churn")            # state, current step, the guard figures of the step's window
    ws.rollouts.pause("churn"); ws.rollouts.resume("churn"); ws.rollouts.abort("churn")  # abort = roll back

``start`` checks everything first (a refusal changes nothing), records the rollout and returns at once; a
controller process (``controller.py``) drives it from its record, so a kernel restart, a closed Lab or a killed
controller loses nothing: every verb here notices a dead controller and starts one that resumes from the record.

With ``shadow=`` the rollout begins with a shadow phase (state ``shadow``): green gets ``shadow_percent`` of the
requests mirrored (50 %, the most an endpoint mirrors) and no live traffic; each mirrored answer is compared with
the live one (``deploy/shadow.py``). Once the shadow time has passed and ``min_requests`` mirrored requests were
compared, green goes on to the live steps if its agreement (and differences, and its own error rate and p99) meet
the guards; else the mirror is turned off and the rollout ends ``rolled_back``: green never served a live request.
"""

from __future__ import annotations

import builtins
import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from jupyter_mlops.exceptions import Conflict, InvalidInput, NotFound
from jupyter_mlops.records import Record, Records
from jupyter_mlops.rollouts import plan

if TYPE_CHECKING:
    from types import ModuleType

    from jupyter_mlops.store.rollouts import RolloutRecord
    from jupyter_mlops.workspace import Workspace

STATES = ("shadow", "running", "paused", "aborting", "completed", "rolled_back", "aborted")
LIVE = ("shadow", "running")  # the states a controller moves on from
ABORT_WAIT_S = 60.0


@dataclass(frozen=True)
class Rollout(Record):
    """A rollout as recorded: ``state`` shadow, running, paused, aborting, completed, rolled_back or aborted;
    ``step`` is the current step (1-based) and ``percent`` its share of live traffic (0 in the shadow phase);
    ``figures`` are green's and the previous deployments' requests, errors, error rate and p99 over the current
    step's window (in the shadow phase, ``"phase": "shadow"`` and green's figures are its mirrored requests':
    agreement, differences, its own errors and latency)."""

    id: int
    endpoint: str
    deployment: str
    model: str | None
    state: str
    step: int
    steps: list[int]
    percent: int
    bake_s: float
    guards: dict[str, float]
    figures: dict[str, Any] | None
    reason: str | None
    promote: str | None
    controller_pid: int | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    table_columns: ClassVar[tuple[str, ...]] = ("id", "endpoint", "deployment", "state", "step", "percent", "reason")


class Rollouts:
    """``ws.rollouts``: start, status, list, pause, resume, abort."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def start(
        self,
        endpoint: str,
        deployment: str,
        *,
        model: str | None = None,
        steps: builtins.list[int] | tuple[int, ...] = (10, 50, 100),
        bake: str | float = "5m",
        guards: dict[str, float] | None = None,
        shadow: str | float | None = None,
        shadow_percent: int = 50,
        promote: bool | str = False,
        deploy_options: dict[str, Any] | None = None,
    ) -> Rollout:
        """Roll ``deployment`` (deployed first from ``model`` when given) through ``steps``; returns at once with
        the record. ``shadow="10m"`` first mirrors ``shadow_percent`` of the requests to it for that long and
        goes on only if its answers meet the guards (``agreement``, default 0.95). ``promote=True`` (or an alias
        name) moves the model's ``champion`` alias (or that one) at the end, when the release policy allows it."""
        from jupyter_mlops.registry import current_user

        shadow_s = plan.parse_duration(shadow, "shadow") if shadow is not None else 0.0
        percent = plan.check_shadow_percent(shadow_percent)
        checked_steps = plan.check_steps(steps)
        bake_s = plan.parse_duration(bake)
        checked_guards = plan.check_guards(guards, shadow=shadow_s > 0)
        alias = "champion" if promote is True else (promote or None)
        if alias is not None and not isinstance(alias, str):
            raise InvalidInput(f"promote is True, False or an alias name, not {promote!r}.")
        if alias and checked_steps[-1] != 100:
            raise InvalidInput(f"promote needs a last step of 100 %; the steps end at {checked_steps[-1]} %.")
        info = self.ws.endpoints.show(endpoint)  # NotFound names the endpoints
        active = _control().active_row(self.ws, endpoint)
        if active is not None:
            raise Conflict(
                f"Endpoint {endpoint} already has an active rollout ({active.deployment}, {active.state}); "
                "abort it or wait for it to end."
            )
        names = [d.name for d in info.deployments]
        if model is None and deployment not in names:
            raise NotFound(
                f"No deployment {deployment!r} in {endpoint}; deployments: {', '.join(names) or 'none'} "
                "(or give model= to deploy it)."
            )
        plan.split_for(checked_steps[0], deployment, info.traffic)  # refused when nothing serves to move from
        if shadow_s and info.traffic.get(deployment):
            raise InvalidInput(
                f"{deployment} already receives {info.traffic[deployment]}% of live traffic: a shadow phase is for a "
                "deployment that gets none yet."
            )
        if model is not None:
            from jupyter_mlops.refs import ModelRef

            ref = ModelRef.parse(model)
            self.ws.models.get(ref.name, ref.selector)  # NotFound before anything is deployed
            self.ws.endpoints.deploy(endpoint, deployment, model, **(deploy_options or {}))
        row = self._insert(
            endpoint=endpoint,
            active_endpoint=endpoint,
            deployment=deployment,
            model=model,
            steps=json.dumps(checked_steps),
            bake_s=bake_s,
            guards=json.dumps(checked_guards),
            promote_alias=alias,
            state="shadow" if shadow_s else "running",
            step_index=0,
            step_applied=False,
            baseline=json.dumps({"traffic": info.traffic, "mirror": info.mirror, **_shadow_plan(shadow_s, percent)}),
            created_by=current_user(),
        )
        data = {
            "rolloutId": row.id,
            "endpointName": endpoint,
            "deploymentName": deployment,
            "model": model,
            "steps": checked_steps,
            "bakeSeconds": bake_s,
            "guards": checked_guards,
            "traffic": info.traffic,
            "shadowSeconds": shadow_s or None,
        }
        self.ws.events.emit("rollout.started", f"endpoints/{endpoint}", data)
        _control().ensure_controller(self.ws, row)
        return self.status(endpoint)

    def status(self, endpoint: str) -> Rollout:
        """The endpoint's latest rollout; an active one whose controller died gets a new one, resuming it."""
        row = self._latest(endpoint)
        if _control().ensure_controller(self.ws, row):
            row = self._latest(endpoint)
        return _rollout(row)

    def reconcile(self) -> builtins.list[str]:
        """Give every active rollout whose controller died a new one (the Lab's server extension calls this every
        few seconds, so a rollout goes on after a killed controller with nobody asking); returns their endpoints."""
        from sqlalchemy import select

        from jupyter_mlops.store.rollouts import RolloutRecord

        with self.ws.store.session() as session:
            rows = list(session.scalars(select(RolloutRecord).where(RolloutRecord.active_endpoint.is_not(None))))
            session.expunge_all()
        return [row.endpoint for row in rows if _control().ensure_controller(self.ws, row)]

    def list(self, endpoint: str | None = None) -> builtins.list[Rollout]:
        """Every rollout (of ``endpoint``), newest first."""
        from sqlalchemy import select

        from jupyter_mlops.store.rollouts import RolloutRecord

        query = select(RolloutRecord).order_by(RolloutRecord.id.desc())
        if endpoint is not None:
            query = query.where(RolloutRecord.endpoint == endpoint)
        with self.ws.store.session() as session:
            return Records(_rollout(r) for r in session.scalars(query))

    def pause(self, endpoint: str) -> Rollout:
        """Hold the current step: traffic stays as it is and no guard is judged until ``resume``."""
        return self._move(endpoint, LIVE, "paused", "pause")

    def resume(self, endpoint: str) -> Rollout:
        """Go on from the current step (or the shadow phase), whose bake time and window start again."""
        row = _control().active_row(self.ws, endpoint)
        state = "shadow" if row is not None and _in_shadow(row) else "running"
        return self._move(endpoint, ("paused",), state, "resume", step_applied=False)

    def abort(self, endpoint: str, *, wait: float = ABORT_WAIT_S) -> Rollout:
        """Roll back: traffic to the split from before the rollout; returns once the controller has done it."""
        from jupyter_mlops.registry import current_user

        self._move(endpoint, (*LIVE, "paused"), "aborting", "abort", reason=f"aborted by {current_user()}")
        deadline = time.monotonic() + wait
        while True:
            record = self.status(endpoint)
            if record.state != "aborting" or time.monotonic() >= deadline:
                return record
            time.sleep(0.05)

    # -- records --------------------------------------------------------------------------------------------------
    def _move(self, endpoint: str, states: tuple[str, ...], state: str, verb: str, **values: Any) -> Rollout:
        row = _control().active_row(self.ws, endpoint)
        if row is None:
            latest = self._latest(endpoint)
            raise Conflict(f"Cannot {verb}: the latest rollout of {endpoint} is {latest.state}.")
        if row.state not in states or not _control().update_row(
            self.ws, row.id, {"state": states}, state=state, **values
        ):
            now = self._latest(endpoint)
            raise Conflict(f"Cannot {verb} the rollout of {endpoint}: it is {now.state}.")
        return self.status(endpoint)

    def _insert(self, **values: Any) -> RolloutRecord:
        from sqlalchemy.exc import IntegrityError

        from jupyter_mlops.store.rollouts import RolloutRecord

        try:
            with self.ws.store.session() as session:
                row = RolloutRecord(**values)
                session.add(row)
                session.flush()
                session.expunge(row)
                return row
        except IntegrityError:
            raise Conflict(f"Endpoint {values['endpoint']} already has an active rollout.") from None

    def _latest(self, endpoint: str) -> RolloutRecord:
        from sqlalchemy import select

        from jupyter_mlops.store.rollouts import RolloutRecord

        with self.ws.store.session() as session:
            row = session.scalar(
                select(RolloutRecord).where(RolloutRecord.endpoint == endpoint).order_by(RolloutRecord.id.desc())
            )
            if row is None:
                raise NotFound(f"Endpoint {endpoint!r} has no rollout.")
            session.expunge(row)
            return row


def _control() -> ModuleType:
    """The controller module, imported late: ``python -m`` runs it as ``__main__`` after importing this package."""
    from jupyter_mlops.rollouts import controller

    return controller


def _shadow_plan(seconds: float, percent: int) -> dict[str, Any]:
    """What the baseline keeps of the shadow phase (the record has no column for it)."""
    return {"shadow": {"seconds": seconds, "percent": percent, "passed": False}} if seconds else {}


def _in_shadow(row: RolloutRecord) -> bool:
    """The rollout has a shadow phase it has not passed yet."""
    phase = json.loads(row.baseline).get("shadow")
    return bool(phase) and not phase.get("passed")


def _rollout(row: RolloutRecord) -> Rollout:
    from jupyter_mlops.processes import ProcessIdentity
    from jupyter_mlops.store.schema import as_utc

    steps = json.loads(row.steps)
    identity = ProcessIdentity.parse(row.controller)
    return Rollout(
        id=row.id,
        endpoint=row.endpoint,
        deployment=row.deployment,
        model=row.model,
        state=row.state,
        step=row.step_index + 1,
        steps=steps,
        percent=0 if _in_shadow(row) else steps[row.step_index],
        bake_s=row.bake_s,
        guards=json.loads(row.guards),
        figures=json.loads(row.figures) if row.figures else None,
        reason=row.reason,
        promote=row.promote_alias,
        controller_pid=identity.pid if identity is not None else None,
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        ended_at=as_utc(row.ended_at) if row.ended_at else None,
    )


__all__ = ["LIVE", "STATES", "Rollout", "Rollouts"]
