"""The rollout controller: one process per active rollout that moves traffic through its steps.

    python -m jupyter_mlops.rollouts.controller ENDPOINT --workspace ROOT [--metadata-uri URI]

Everything it knows is in the rollout's row, so a controller that dies is replaced by one that resumes from the
row (``ensure_controller``, called by every verb). It first claims the row with a conditional update naming the
controller it replaces (none, or a dead one): of two controllers started at once exactly one claims, the other
exits. Each step: set the split (checked to sum to 100), record it, then watch the live figures of the step's
window until the bake time has passed and green has had ``min_requests``; a guard trips -> traffic back to the
split from before the rollout. A rollout with a shadow phase starts in state ``shadow``: green is mirrored (no live
traffic), and its mirrored answers compared with the live ones are judged (agreement, differences, its own errors
and p99) once the shadow time has passed and ``min_requests`` were compared; it then goes on to the first step, or
is rolled back (the mirror off). Pause, resume and abort are written to the row by the verbs; the controller acts
on them (abort rolls back), so traffic is only ever changed by the process that owns the rollout.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from jupyter_mlops.exceptions import NotFound
from jupyter_mlops.processes import ProcessIdentity, start_detached
from jupyter_mlops.rollouts import plan

if TYPE_CHECKING:
    from jupyter_mlops.store.rollouts import RolloutRecord
    from jupyter_mlops.workspace import Workspace

log = logging.getLogger("jupyter_mlops.rollouts")
POLL_S = 0.2
ACTIVE = ("shadow", "running", "paused", "aborting")
FINAL = ("completed", "rolled_back", "aborted")
LOG_NAME = "_rollout"  # the controller's log, beside the endpoint's deployment logs (no deployment has this name)
_launched: list[subprocess.Popen[bytes]] = []  # kept to reap them once they exit (no zombies in a long kernel)


# -- launching and claiming -------------------------------------------------------------------------------------
def ensure_controller(ws: Workspace, row: RolloutRecord) -> bool:
    """Start a controller for an active rollout whose controller is missing or dead; True when one was started."""
    if row.state not in ACTIVE:
        return False
    identity = ProcessIdentity.parse(row.controller)
    if identity is not None and identity.alive():
        return False
    process = launch(ws, row.endpoint)
    claim(ws, row.id, str(ProcessIdentity.of(process.pid)), row.controller)  # lost: the other one drives it
    return True


def launch(ws: Workspace, endpoint: str) -> subprocess.Popen[bytes]:
    """Start a controller process for ``endpoint``, detached (a kernel restart does not stop it)."""
    command = [sys.executable, "-m", "jupyter_mlops.rollouts.controller", endpoint]
    command += ["--workspace", str(ws.root), "--metadata-uri", ws.metadata_uri]
    if not ws.is_local:
        command += ["--tracking-uri", ws.tracking_uri]
    path = ws.layout.deployment_log(endpoint, LOG_NAME)
    process = start_detached(command, path)
    _launched[:] = [p for p in _launched if p.poll() is None]
    _launched.append(process)
    return process


def claim(ws: Workspace, rollout_id: int, owner: str, previous: str | None) -> bool:
    """Record ``owner`` as the controller if the row still names ``previous`` (or already names ``owner``)."""
    from sqlalchemy import update

    from jupyter_mlops.store.rollouts import RolloutRecord

    column = RolloutRecord.controller
    with ws.store.session() as session:
        moved = session.execute(
            update(RolloutRecord)
            .where(RolloutRecord.id == rollout_id, column.is_(None) if previous is None else column == previous)
            .values(controller=owner)
        )
        if moved.rowcount == 1:  # type: ignore[attr-defined]
            return True
        row = session.get(RolloutRecord, rollout_id)
        return row is not None and row.controller == owner


def active_row(ws: Workspace, endpoint: str) -> RolloutRecord | None:
    from sqlalchemy import select

    from jupyter_mlops.store.rollouts import RolloutRecord

    with ws.store.session() as session:
        row = session.scalar(select(RolloutRecord).where(RolloutRecord.active_endpoint == endpoint))
        if row is not None:
            session.expunge(row)
        return row


def update_row(ws: Workspace, rollout_id: int, where: dict[str, Any], **values: Any) -> bool:
    """A conditional update of the rollout (``where``: column -> required value or tuple of values)."""
    from sqlalchemy import update

    from jupyter_mlops.store.rollouts import RolloutRecord

    conditions = [RolloutRecord.id == rollout_id]
    for name, value in where.items():
        column = getattr(RolloutRecord, name)
        conditions.append(column.in_(value) if isinstance(value, tuple) else column == value)
    values["updated_at"] = datetime.now(timezone.utc)
    for name in ("window", "figures", "baseline", "steps", "guards"):
        if name in values and not isinstance(values[name], (str, type(None))):
            values[name] = json.dumps(values[name])
    with ws.store.session() as session:
        moved = session.execute(update(RolloutRecord).where(*conditions).values(**values))
        return moved.rowcount == 1  # type: ignore[attr-defined]


# -- driving ------------------------------------------------------------------------------------------------------
class Controller:
    """Drives one rollout while it owns its row."""

    def __init__(self, ws: Workspace, rollout_id: int, me: str) -> None:
        self.ws, self.id, self.me = ws, rollout_id, me

    def _row(self) -> RolloutRecord | None:
        from jupyter_mlops.store.rollouts import RolloutRecord

        with self.ws.store.session() as session:
            row = session.get(RolloutRecord, self.id)
            if row is not None:
                session.expunge(row)
            return row

    def _update(self, where: dict[str, Any] | None = None, **values: Any) -> bool:
        return update_row(self.ws, self.id, {"controller": self.me, **(where or {})}, **values)

    def run(self) -> str:
        """Until the rollout ends (its final state) or another controller owns it ("lost")."""
        while True:
            row = self._row()
            if row is None or row.controller != self.me:
                return "lost"
            if row.state in FINAL:
                return row.state
            try:
                info = self.ws.endpoints.show(row.endpoint)
                if info.status == "deleting":
                    raise NotFound(f"endpoint {row.endpoint} is being deleted")
            except NotFound:
                self._finish(row, "aborted", "the endpoint was deleted", None, apply=False)
                continue
            try:
                self._tick(row, info)
            except NotFound:
                continue  # the endpoint went away meanwhile: seen on the next pass
            except Exception:
                log.exception("rollout %s: a pass failed; trying again", self.id)
                time.sleep(1.0)
            time.sleep(POLL_S)

    def _tick(self, row: RolloutRecord, info: Any) -> None:
        if row.state == "aborting":
            self._finish(row, "aborted", row.reason or "aborted", None)
        elif row.state == "paused":
            return
        elif row.state == "shadow":
            if not row.step_applied:
                self._apply_shadow(row, info)
            else:
                self._watch_shadow(row, info)
        elif not row.step_applied:
            self._apply_step(row, info)
        else:
            self._watch(row, info)

    def _apply_step(self, row: RolloutRecord, info: Any) -> None:
        steps, baseline = json.loads(row.steps), json.loads(row.baseline)
        percent = steps[row.step_index]
        split = plan.split_for(percent, row.deployment, baseline["traffic"])
        mirror = {name: p for name, p in info.mirror.items() if name != row.deployment}
        if not self._owns_running():
            return
        after = self.ws.endpoints.set_split(row.endpoint, traffic=split, mirror=mirror)
        _check_sum(after.traffic)
        start = plan.counters(self._sample(after))
        if self._update(
            {"state": "running", "step_index": row.step_index},
            step_applied=True,
            step_started_at=datetime.now(timezone.utc),
            window=start,
        ):
            data = {**_subject(row), "step": row.step_index + 1, "steps": steps, "percent": percent, "traffic": split}
            self.ws.events.emit("rollout.step", f"endpoints/{row.endpoint}", data)

    def _watch(self, row: RolloutRecord, info: Any) -> None:
        from jupyter_mlops.store.schema import as_utc

        guards = json.loads(row.guards)
        now = plan.counters(self._sample(info))
        start = json.loads(row.window or "{}")
        previous = [d.name for d in info.deployments if d.name != row.deployment and info.traffic.get(d.name)]
        green = plan.window(start, now, [row.deployment])
        blue = plan.window(start, now, previous)
        if green.get("reset") or blue.get("reset"):
            self._update({"state": "running"}, window=now)
            return
        elapsed = (datetime.now(timezone.utc) - as_utc(row.step_started_at)).total_seconds()
        figures = {"green": green, "previous": blue, "elapsed_s": round(elapsed, 3), "deployments": previous}
        enough = green["requests"] >= guards.get("min_requests", 1)
        trip = plan.tripped(guards, green, blue) if enough else None
        if trip is not None:
            guard, figure, threshold = trip
            reason = f"{guard} of {row.deployment} was {figure:g}, over the threshold {threshold:g}"
            self._finish(row, "rolled_back", reason, figures, trip=trip)
        elif enough and elapsed >= row.bake_s:
            steps = json.loads(row.steps)
            if row.step_index + 1 < len(steps):
                self._update(
                    {"state": "running", "step_index": row.step_index},
                    step_index=row.step_index + 1,
                    step_applied=False,
                    figures=figures,
                )
            else:
                self._complete(row, figures)
        else:
            self._update({"state": ("running",)}, figures=figures)

    def _apply_shadow(self, row: RolloutRecord, info: Any) -> None:
        """Mirror the share of the shadow phase to green (live traffic unchanged), then record the window start."""
        phase = json.loads(row.baseline)["shadow"]
        if not self._owns_running("shadow"):
            return
        after = self.ws.endpoints.set_split(row.endpoint, mirror={row.deployment: phase["percent"]})
        _check_sum(after.traffic)
        live, shadows = self._read(after)
        start = {"live": plan.counters(live), "shadow": shadows.get(row.deployment)}
        self._update(
            {"state": "shadow", "step_applied": False},
            step_applied=True,
            step_started_at=datetime.now(timezone.utc),
            window=start,
        )

    def _watch_shadow(self, row: RolloutRecord, info: Any) -> None:
        """Judge green's mirrored answers: on to the first live step, or rolled back (it never served live)."""
        from jupyter_mlops.store.schema import as_utc

        guards, baseline = json.loads(row.guards), json.loads(row.baseline)
        live, shadows = self._read(info)
        start = json.loads(row.window or "{}")
        previous = [d.name for d in info.deployments if d.name != row.deployment and info.traffic.get(d.name)]
        green = plan.shadow_window(start.get("shadow"), shadows.get(row.deployment))
        blue = plan.window(start.get("live", {}), plan.counters(live), previous)
        if green.get("reset") or blue.get("reset"):
            self._update(
                {"state": "shadow"}, window={"live": plan.counters(live), "shadow": shadows.get(row.deployment)}
            )
            return
        elapsed = (datetime.now(timezone.utc) - as_utc(row.step_started_at)).total_seconds()
        figures = {
            "phase": "shadow",
            "green": green,
            "previous": blue,
            "elapsed_s": round(elapsed, 3),
            "shadow_s": baseline["shadow"]["seconds"],
            "mirror_percent": baseline["shadow"]["percent"],
            "deployments": previous,
        }
        wanted = guards.get("min_requests", 1)
        trip = plan.shadow_tripped(guards, green, blue) if green["requests"] >= wanted else None
        if trip is not None:
            guard, figure, threshold = trip
            reason = f"shadow: {guard} of {row.deployment} was {figure:g}, past the threshold {threshold:g}"
            self._finish(row, "rolled_back", reason, figures, trip=trip)
        elif green["compared"] >= wanted and elapsed >= baseline["shadow"]["seconds"]:
            baseline["shadow"]["passed"] = True
            self._update({"state": "shadow"}, state="running", step_applied=False, baseline=baseline, figures=figures)
        else:
            self._update({"state": "shadow"}, figures=figures)

    def _complete(self, row: RolloutRecord, figures: dict[str, Any]) -> None:
        from jupyter_mlops.exceptions import MlopsError

        promoted, why = None, None
        model = next(d.model for d in self.ws.endpoints.show(row.endpoint).deployments if d.name == row.deployment)
        if row.promote_alias:
            name, _, version = model.rpartition(":")
            try:
                self.ws.release.promote(
                    name, version, row.promote_alias, reason=f"rollout of {row.endpoint}/{row.deployment} completed"
                )
                promoted = f"{model} is now @{row.promote_alias}"
            except MlopsError as exc:
                why = f"the promotion was refused: {exc}"
        done = datetime.now(timezone.utc)
        reason = promoted or why
        if self._update(
            {"state": "running"}, state="completed", active_endpoint=None, ended_at=done, figures=figures, reason=reason
        ):
            data = {**_subject(row), "model": model, "figures": figures, "promoted": promoted, "reason": why}
            self.ws.events.emit("rollout.completed", f"endpoints/{row.endpoint}", data)

    def _finish(
        self,
        row: RolloutRecord,
        state: str,
        reason: str,
        figures: dict[str, Any] | None,
        *,
        trip: tuple[str, float, float] | None = None,
        apply: bool = True,
    ) -> None:
        """Traffic back to the split from before the rollout (green's mirror off), then the final state."""
        decided = datetime.now(timezone.utc)
        baseline = json.loads(row.baseline)
        if apply:
            mirror = {name: p for name, p in baseline["mirror"].items() if name != row.deployment}
            after = self.ws.endpoints.set_split(row.endpoint, traffic=baseline["traffic"], mirror=mirror)
            _check_sum(after.traffic)
        values: dict[str, Any] = {"state": state, "active_endpoint": None, "ended_at": datetime.now(timezone.utc)}
        values["reason"] = reason
        if figures is not None:
            values["figures"] = figures
        if not self._update({"state": ACTIVE}, **values):
            return  # changed meanwhile (paused, aborted): looked at again on the next pass
        guard, figure, threshold = trip if trip is not None else (None, None, None)
        data = {
            **_subject(row),
            "state": state,
            "step": row.step_index + 1,
            "guard": guard,
            "figure": figure,
            "threshold": threshold,
            "reason": reason,
            "traffic": baseline["traffic"],
            "figures": figures,
            "decidedAt": decided.isoformat(),  # the event's time is once every worker serves the earlier split
        }
        self.ws.events.emit("rollout.rolled_back", f"endpoints/{row.endpoint}", data)

    def _owns_running(self, state: str = "running") -> bool:
        row = self._row()
        return row is not None and row.controller == self.me and row.state == state

    def _read(self, info: Any) -> tuple[Any, dict[str, dict[str, Any]]]:
        """One reading of ``/metrics``: the live counters (a ``live.Sample``) and the shadow counts."""
        import urllib.request

        from jupyter_mlops.deploy import shadow
        from jupyter_mlops.deploy.live import SCRAPE_TIMEOUT_S, Sample, metrics_url, parse_metrics

        url = metrics_url(info)
        if url is None:
            return Sample(), {}
        try:
            with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT_S) as response:
                text = response.read().decode()
            return parse_metrics(text), shadow.parse_metrics(text)
        except (OSError, ValueError):
            return Sample(), {}

    def _sample(self, info: Any) -> Any:
        from jupyter_mlops.deploy.live import Sample, metrics_url, scrape

        url = metrics_url(info)
        if url is None:
            return Sample()
        try:
            return scrape(url)
        except (OSError, ValueError):
            return Sample()


def _check_sum(traffic: dict[str, int]) -> None:
    total = sum(traffic.values())
    if total != 100:
        raise RuntimeError(f"the traffic of the endpoint sums to {total}, not 100: {traffic}")


def _subject(row: RolloutRecord) -> dict[str, Any]:
    return {"rolloutId": row.id, "endpointName": row.endpoint, "deploymentName": row.deployment}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jupyter_mlops.rollouts.controller")
    parser.add_argument("endpoint")
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--metadata-uri")
    parser.add_argument("--tracking-uri")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s rollout-controller %(levelname)s %(message)s")
    from jupyter_mlops.workspace import Workspace

    ws = Workspace(args.workspace, tracking_uri=args.tracking_uri, metadata_uri=args.metadata_uri)
    me = str(ProcessIdentity.current())
    row = active_row(ws, args.endpoint)
    if row is None:
        log.info("no active rollout on %s", args.endpoint)
        return 0
    if row.controller != me:
        current = ProcessIdentity.parse(row.controller)
        if current is not None and current.alive():
            log.info("rollout %s of %s is driven by %s", row.id, args.endpoint, row.controller)
            return 3
        if not claim(ws, row.id, me, row.controller):
            log.info("rollout %s of %s was claimed by another controller", row.id, args.endpoint)
            return 3
    log.info("driving rollout %s of %s/%s as %s", row.id, row.endpoint, row.deployment, me)
    outcome = Controller(ws, row.id, me).run()
    log.info("rollout %s: %s", row.id, outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
