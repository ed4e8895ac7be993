"""The jupyter_server extension: builds the Workspace once and serves the REST routes under ``/mlops/api/``.

Configure it like any Jupyter application (``jupyter_server_config.py`` or the command line)::

    c.MlopsServerApp.workspace_dir = "/data/mlops"        # else MLOPS_WORKSPACE / ./mlops-workspace
    c.MlopsServerApp.tracking_uri = "http://mlflow:5000"  # a shared MLflow server instead of the local store
"""

from __future__ import annotations

import dataclasses
import threading

from jupyter_server.extension.application import ExtensionApp
from traitlets import Float, Unicode

from jupyter_mlops.deploy.live import LiveReader
from jupyter_mlops.server.events import EventBus, LogFollower
from jupyter_mlops.server.handlers import handlers
from jupyter_mlops.workspace import Workspace


@dataclasses.dataclass
class MlopsContext:
    """What the handlers share: the one Workspace, the event bus and the follower of the event log feeding it, and
    the reader of the endpoints' metrics (it keeps the previous reading, for rates)."""

    workspace: Workspace
    events: EventBus
    watcher: LogFollower
    live: LiveReader = dataclasses.field(default_factory=LiveReader)
    _opening: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    _opened: bool = False

    def open_stores(self) -> None:
        """Open the tracking and metadata stores once, from one thread: opening a new workspace creates them
        (migrations), which the panels' first requests, all at once, must not do side by side."""
        if self._opened:
            return
        with self._opening:
            if not self._opened:
                _ = self.workspace.store.engine, self.workspace.client  # the engine: migrated on first use
                self._opened = True


class MlopsServerApp(ExtensionApp):
    name = "jupyter_mlops"
    description = "REST API and event stream of jupyter-mlops for the JupyterLab sidebar."
    load_other_extensions = True

    workspace_dir = Unicode(
        None, allow_none=True, config=True, help="The workspace folder (default: MLOPS_WORKSPACE, ./mlops-workspace)."
    )
    tracking_uri = Unicode(
        None, allow_none=True, config=True, help="An MLflow tracking URI (default: the workspace's SQLite store)."
    )
    metadata_uri = Unicode(
        None, allow_none=True, config=True, help="The metadata store URL (default: MLOPS_METADATA_URI or SQLite)."
    )
    run_poll_interval = Float(
        1.0, config=True, help="Seconds between reads of the event log while a client listens to the stream."
    )
    monitor_interval = Float(
        60.0, config=True, help="Seconds between runs of the monitors that are due (0: do not schedule monitors here)."
    )
    reconcile_interval = Float(
        5.0,
        config=True,
        help="Seconds between checks for pipeline runs whose runner died (marked KILLED) and rollouts whose "
        "controller died (given a new one); 0: do not check here.",
    )

    automation_interval = Float(
        1.0, config=True, help="Seconds between passes of the automations over the event log; 0: do not run them here."
    )

    def initialize_settings(self) -> None:
        if self.workspace_dir or self.tracking_uri:
            ws = Workspace(self.workspace_dir, tracking_uri=self.tracking_uri, metadata_uri=self.metadata_uri)
        else:
            ws = Workspace(metadata_uri=self.metadata_uri)
        bus = EventBus()
        self.context = MlopsContext(ws, bus, LogFollower(ws, bus, interval=self.run_poll_interval))
        self.settings["mlops"] = self.context
        self._scheduler = None
        if self.monitor_interval > 0:
            from tornado.ioloop import PeriodicCallback

            self._scheduler = PeriodicCallback(self._run_due_monitors, self.monitor_interval * 1000)
            self._scheduler.start()
        self._reconciler = None
        if self.reconcile_interval > 0:
            from tornado.ioloop import PeriodicCallback

            self._reconciler = PeriodicCallback(self._reconcile_pipelines, self.reconcile_interval * 1000)
            self._reconciler.start()
        self._automations = None
        if self.automation_interval > 0:
            from tornado.ioloop import PeriodicCallback

            self._automations = PeriodicCallback(self._run_automations, self.automation_interval * 1000)
            self._automations.start()
        self.log.info("jupyter-mlops: workspace %s (tracking %s)", ws.root, ws.tracking_uri)

    async def _reconcile_pipelines(self) -> None:
        """While JupyterLab runs, a pipeline run whose runner was killed is marked KILLED within seconds, and a
        rollout whose controller was killed gets a new one."""
        import asyncio

        from jupyter_mlops.pipelines.history import reconcile_all

        ws = self.context.workspace

        def work() -> list[str]:
            self.context.open_stores()
            resumed = ws.rollouts.reconcile()
            if resumed:
                self.log.info("jupyter-mlops: rollouts resumed with a new controller: %s", ", ".join(resumed))
            return reconcile_all(ws)

        try:
            killed = await asyncio.get_running_loop().run_in_executor(None, work)
        except Exception as exc:  # a store hiccup: the next tick tries again
            self.log.debug("jupyter-mlops: pipeline reconciliation: %s", exc)
            return
        if killed:
            self.log.info("jupyter-mlops: marked KILLED the pipeline runs whose runner died: %s", ", ".join(killed))

    async def _run_automations(self) -> None:
        """While JupyterLab runs, automations act on new events (a pass at a time: a long action holds the next)."""
        import asyncio

        ws = self.context.workspace

        def work() -> int:
            self.context.open_stores()  # once, under the context's lock: never two threads migrating side by side
            return len(ws.automations.run_pending())

        try:
            acted = await asyncio.get_running_loop().run_in_executor(None, work)
        except Exception as exc:  # a store hiccup: the next tick tries again
            self.log.debug("jupyter-mlops: automations: %s", exc)
            return
        if acted:
            self.log.info("jupyter-mlops: automations took %d action(s)", acted)
            self.context.watcher.nudge()

    async def _run_due_monitors(self) -> None:
        """While JupyterLab runs, monitors run on their schedule, and pending events (webhooks left by a crashed
        process included) are delivered."""
        import asyncio

        ws = self.context.workspace

        def work() -> None:
            ws.events.start_background()
            ws.monitors.run_due()

        try:
            await asyncio.get_running_loop().run_in_executor(None, work)
        except Exception as exc:  # a failing monitor emits monitor.failed; the scheduler goes on
            self.log.warning("jupyter-mlops: scheduled monitors: %s", exc)

    def initialize_handlers(self) -> None:
        self.handlers.extend(handlers())

    async def stop_extension(self) -> None:
        context = getattr(self, "context", None)
        if context is not None:
            context.watcher.stop()
        for callback in (getattr(self, name, None) for name in ("_scheduler", "_reconciler", "_automations")):
            if callback is not None:
                callback.stop()


main = launch_new_instance = MlopsServerApp.launch_instance
