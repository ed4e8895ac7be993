"""``mlops.ui.endpoint("name")``: one endpoint in a notebook, as the Lab's Endpoints panel shows it.

Every control calls one core function (``ws.endpoints.show``, ``set_traffic``, ``set_mirror``, ``invoke``,
``logs``; live figures from :class:`jupyter_mlops.deploy.live.LiveReader`; ``ws.rollouts.status`` and ``abort``);
the rules (traffic adds up to 100, one mirror at most 50%) are the core's, and its refusals show inline.
"""

from __future__ import annotations

import html
import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from jupyter_mlops.deploy.live import LiveReader
from jupyter_mlops.exceptions import InvalidInput, MlopsError, NotFound
from jupyter_mlops.widgets.panels import _error_html
from jupyter_mlops.workspace import default_workspace

if TYPE_CHECKING:
    from jupyter_mlops.deploy.endpoints import EndpointInfo
    from jupyter_mlops.deploy.live import LiveStats
    from jupyter_mlops.rollouts import Rollout
    from jupyter_mlops.workspace import Workspace

EXAMPLE_BODY = '{"inputs": [[0.1, 0.2, 0.3, 0.4]]}'
ACTIVE = ("shadow", "running", "paused", "aborting")
RECENT_S = 30 * 60  # an ended rollout stays shown this long, as in the Lab's Endpoints panel
_BAR_STYLE = {"running": "info", "paused": "warning", "aborting": "warning", "completed": "success"}


def _pre(text: str) -> str:
    return f'<pre style="max-height: 20em; overflow: auto; white-space: pre-wrap">{html.escape(text)}</pre>'


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def guard_figures(rollout: Rollout) -> list[tuple[str, Any, float]]:
    """Each guard with the deployment's figure over the current step (None before the first reading)."""
    green: dict[str, Any] = (rollout.figures or {}).get("green") or {}
    return [(g, green.get("requests" if g == "min_requests" else g), t) for g, t in rollout.guards.items()]


def _guard_text(guard: str, value: Any) -> str:
    if value is None:
        return "-"
    if guard == "error_rate":
        return f"{float(value) * 100:.2f}%"
    return _ms(float(value)) if guard == "p99_ms" else f"{int(value)} req"


def rollout_shown(rollout: Rollout, now: datetime | None = None) -> bool:
    """An active rollout, or one that ended less than ``RECENT_S`` ago."""
    if rollout.state in ACTIVE:
        return True
    ended = rollout.ended_at
    return ended is not None and ((now or datetime.now(timezone.utc)) - ended).total_seconds() < RECENT_S


class EndpointPanel(w.VBox):
    """Deployments with their traffic, mirror and live figures; change the split; send a test request; read logs."""

    def __init__(self, name: str, workspace: Workspace | None = None) -> None:
        self.ws = workspace or default_workspace()
        self.name = name
        self.live = LiveReader()
        self.info: EndpointInfo | None = None
        self.header = w.HTML()
        self.error = w.HTML()
        self.table = w.HTML()
        self.traffic: dict[str, w.BoundedIntText] = {}
        self.mirror: dict[str, w.BoundedIntText] = {}
        self.shares = w.VBox()
        self.apply_button = w.Button(description="Apply", button_style="primary")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.body = w.Textarea(value=EXAMPLE_BODY, description="Body", layout=w.Layout(width="100%", height="80px"))
        self.deployment = w.Dropdown(options=[("by traffic", "")], value="", description="Deployment")
        self.send_button = w.Button(description="Send")
        self.response = w.HTML()
        self.logs_button = w.Button(description="Logs")
        self.logs = w.HTML()
        self.rollout: Rollout | None = None
        self.rollout_progress = w.IntProgress(min=0, max=1, value=0, description="Rollout")
        self.rollout_info = w.HTML()
        self.abort_button = w.Button(description="Abort rollout", button_style="danger", icon="stop")
        self.rollout_box = w.VBox(
            [w.HBox([self.rollout_progress, self.abort_button]), self.rollout_info], layout=w.Layout(display="none")
        )
        self.abort_button.on_click(lambda _: self.abort())
        self.apply_button.on_click(lambda _: self.apply())
        self.refresh_button.on_click(lambda _: self.refresh())
        self.send_button.on_click(lambda _: self.send())
        self.logs_button.on_click(lambda _: self.show_logs())
        super().__init__(
            [
                w.HBox([self.header, self.refresh_button]),
                self.error,
                self.table,
                self.rollout_box,
                self.shares,
                self.apply_button,
                w.HTML("<b>Test request</b>"),
                self.body,
                w.HBox([self.deployment, self.send_button]),
                self.response,
                self.logs_button,
                self.logs,
            ]
        )
        self.refresh()

    def refresh(self) -> None:
        """Read the endpoint and its live figures (a rate needs two refreshes)."""
        try:
            self.info = self.ws.endpoints.show(self.name)
            self.error.value = ""
        except MlopsError as exc:
            self.error.value = _error_html(exc.message)
            return
        info = self.info
        self.header.value = (
            f"<b>{html.escape(info.name)}</b> · {html.escape(info.status)} · "
            f"<code>{html.escape(info.scoring_uri or '')}</code>"
        )
        self.table.value = self._table(info, self.live.read(info))
        if info.name in self.live.unavailable:
            self.table.value += f"<i>No live figures: {html.escape(self.live.unavailable[info.name])}</i>"
        names = [d.name for d in info.deployments]
        if names != list(self.traffic):
            self.traffic = {n: w.BoundedIntText(min=0, max=100, description=n) for n in names}
            self.mirror = {n: w.BoundedIntText(min=0, max=100, description="mirror") for n in names}
            self.shares.children = [w.HBox([self.traffic[n], self.mirror[n]]) for n in names]
            self.deployment.options = [("by traffic", ""), *[(n, n) for n in names]]
        for n in names:
            self.traffic[n].value = info.traffic.get(n, 0)
            self.mirror[n].value = info.mirror.get(n, 0)
        self.refresh_rollout()

    def refresh_rollout(self) -> None:
        """The endpoint's latest rollout: steps done of all, its state, step and guards; hidden when none is recent."""
        try:
            self.show_rollout(self.ws.rollouts.status(self.name))
        except NotFound:
            self.show_rollout(None)

    def show_rollout(self, rollout: Rollout | None) -> None:
        self.rollout = rollout
        if rollout is None or not rollout_shown(rollout):
            self.rollout_box.layout.display = "none"
            return
        self.rollout_box.layout.display = "flex"
        total = len(rollout.steps)
        self.rollout_progress.max = total
        self.rollout_progress.value = total if rollout.state == "completed" else rollout.step - 1
        self.rollout_progress.bar_style = _BAR_STYLE.get(rollout.state, "danger")
        self.rollout_progress.description = f"{rollout.percent}% live" if rollout.state in ACTIVE else rollout.state
        self.abort_button.disabled = rollout.state == "aborting" or rollout.state not in ACTIVE
        guards = " · ".join(
            f"{html.escape(g)} {_guard_text(g, figure)} / {_guard_text(g, threshold)}"
            for g, figure, threshold in guard_figures(rollout)
        )
        reason = f"<br><i>{html.escape(rollout.reason)}</i>" if rollout.reason else ""
        self.rollout_info.value = (
            f"<b>{html.escape(rollout.deployment)}</b> {html.escape(rollout.state)} · step {rollout.step}/{total} "
            f"({' → '.join(f'{p}%' for p in rollout.steps)}) · {guards}{reason}"
        )

    def abort(self) -> None:
        """Roll back (``ws.rollouts.abort``): traffic to the split from before the rollout."""
        try:
            self.show_rollout(self.ws.rollouts.abort(self.name))
        except MlopsError as exc:
            self.error.value = _error_html(exc.message)
            return
        self.refresh()

    def apply(self) -> None:
        """Set the traffic split and the mirror as typed; the core refuses a split that does not add up."""
        traffic = {n: box.value for n, box in self.traffic.items()}
        mirror = {n: box.value for n, box in self.mirror.items() if box.value}
        try:
            self.ws.endpoints.set_split(self.name, traffic=traffic, mirror=mirror)
        except MlopsError as exc:
            self.error.value = _error_html(exc.message)
            return
        self.refresh()

    def send(self) -> None:
        try:
            data = json.loads(self.body.value)
        except ValueError as exc:
            self.response.value = _error_html(f"The body is not valid JSON: {exc}.")
            return
        try:
            answer = self.ws.endpoints.invoke(self.name, data, deployment=self.deployment.value or None)
        except MlopsError as exc:
            self.response.value = _error_html(exc.message)
            return
        self.response.value = _pre(json.dumps(answer, indent=2))

    def show_logs(self, lines: int = 200) -> None:
        try:
            text = self.ws.endpoints.logs(self.name, self.deployment.value or None, lines=lines)
        except MlopsError as exc:
            self.logs.value = _error_html(exc.message)
            return
        self.logs.value = _pre(text or "(the log is empty)")

    @staticmethod
    def _table(info: EndpointInfo, live: dict[str, LiveStats]) -> str:
        header = "".join(
            f"<th>{h}</th>" for h in ("deployment", "model", "status", "traffic", "mirror", "req/s", "p50", "p99")
        )
        rows = []
        for d in info.deployments:
            stats = live.get(d.name)
            rate = "-" if stats is None or stats.rate_per_s is None else f"{stats.rate_per_s:.2f}"
            cells = (
                d.name,
                d.model,
                d.status if not d.error else f"{d.status}: {d.error}",
                f"{d.traffic}%",
                f"{d.mirror}%",
                rate,
                _ms(stats.p50_ms if stats else None),
                _ms(stats.p99_ms if stats else None),
            )
            rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
        if not rows:
            return "<i>No deployment yet: ws.endpoints.deploy(endpoint, deployment, 'model:version').</i>"
        return f"<table><tr>{header}</tr>{''.join(rows)}</table>"


def endpoint(name: str, *, workspace: Workspace | None = None) -> EndpointPanel:
    """One endpoint as a notebook panel: ``mlops.ui.endpoint("churn-api")``."""
    if not isinstance(name, str) or not name:
        raise InvalidInput("Name the endpoint: mlops.ui.endpoint('churn-api').")
    return EndpointPanel(name, workspace)
