"""Lifecycle events: the durable log, signed webhooks to a real HTTP receiver, e-mail to a real SMTP server,
callbacks, retries, dead letters, replay, and delivery left over by a process that died."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from jupyter_mlops import InvalidInput, NotFound, Workspace
from tests.services import free_port


class Receiver:
    """A real webhook receiver on 127.0.0.1 that records what it gets and answers ``status``."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 204
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._server: ThreadingHTTPServer | None = None
        self._handler = Handler

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self) -> list[dict]:
        return [json.loads(body) for _, body in self.requests]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.events()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def _model_file(tmp_path: Path) -> Path:
    f = tmp_path / "model.bin"
    f.write_bytes(b"weights")
    return f


def test_signed_webhook_reaches_the_receiver_from_a_plain_script(local_workspace: Workspace, receiver, tmp_path):
    # Given a webhook subscription to model registrations
    sub = local_workspace.events.subscribe("ops", webhook=receiver.url, types=["model.registered"])
    assert sub.secret.startswith("whsec_")
    # When a plain Python script registers a model and exits at once
    script = textwrap.dedent(
        f"""
        from jupyter_mlops import Workspace
        Workspace({str(local_workspace.root)!r}).models.register({str(_model_file(tmp_path))!r}, "churn",
                                                               tags={{"stage": "prod"}}, description="why")
        """
    )
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    # Then the receiver got one signed CloudEvent with Azure's ModelRegistered fields, within seconds
    [event] = receiver.wait_for(1)
    assert time.monotonic() - started < 30
    headers, body = receiver.requests[0]
    assert Webhook(sub.secret).verify(body, headers) == event
    assert headers["webhook-id"] == event["id"]
    assert headers["content-type"].startswith("application/cloudevents+json")
    assert event["specversion"] == "1.0" and event["type"] == "model.registered"
    assert event["subject"] == "models/churn/versions/1"
    assert {"id", "source", "type", "subject", "time", "data"} <= set(event)
    assert event["data"]["modelName"] == "churn" and event["data"]["modelVersion"] == "1"
    assert event["data"]["modelTags"] == {"stage": "prod"}
    assert event["data"]["modelProperties"] == {"description": "why"}
    with pytest.raises(Exception):  # noqa: B017 - a wrong secret must not verify
        Webhook("whsec_" + "A" * 43 + "=").verify(body, headers)


def test_event_log_records_the_lifecycle(local_workspace: Workspace, tmp_path):
    ws = local_workspace
    with ws.job(experiment="events", autolog=False) as job:
        pass
    with pytest.raises(RuntimeError), ws.job(experiment="events", autolog=False) as failed:
        raise RuntimeError("boom")
    ws.models.register(_model_file(tmp_path), "churn")
    ws.models.set_alias("churn", "champion", 1)
    ws.models.delete("churn", 1, force=True)
    events = ws.events.tail()
    assert [e.type for e in events] == [
        "run.completed",
        "run.failed",
        "model.registered",
        "model.alias_changed",
        "model.alias_changed",
        "model.deleted",
    ]
    completed, run_failed = events[0], events[1]
    assert completed.subject == f"runs/{job.run_id}" and completed.data["runId"] == job.run_id
    assert completed.data["experimentName"] == "events" and "experimentId" in completed.data
    assert run_failed.data["runId"] == failed.run_id and "RuntimeError: boom" in run_failed.data["error"]
    assert events[3].data == {"modelName": "churn", "alias": "champion", "modelVersion": "1", "previousVersion": None}
    assert events[4].data["modelVersion"] is None  # the forced delete removed the alias, explicitly
    assert events[5].data["modelVersions"] == ["1"]
    assert len({e.id for e in events}) == len(events)
    assert [e.seq for e in events] == sorted(e.seq for e in events)


def test_filters_by_type_and_subject(local_workspace: Workspace, receiver, tmp_path):
    local_workspace.events.subscribe("churn-only", webhook=receiver.url, subject="models/churn/*")
    local_workspace.models.register(_model_file(tmp_path), "churn")
    local_workspace.models.register(_model_file(tmp_path), "fraud")
    local_workspace.events.deliver(timeout=5)
    assert [e["subject"] for e in receiver.events()] == ["models/churn/versions/1"]


def test_subscriber_down_then_up_loses_nothing(local_workspace: Workspace, tmp_path):
    # Given a subscriber that is down while three models are registered
    down = Receiver()
    local_workspace.events.subscribe("later", webhook=down.url, types=["model.registered"])
    for _ in range(3):
        local_workspace.models.register(_model_file(tmp_path), "churn")
    local_workspace.events.deliver()
    # Then all three wait: the oldest is retried with back-off, the others queue behind it (order is kept)
    oldest, *behind = reversed(local_workspace.events.deliveries("later", status="pending"))
    assert oldest.attempts >= 1 and "Connection refused" in oldest.last_error
    assert len(behind) == 2 and all(d.attempts == 0 for d in behind)
    # When it comes back and delivery runs again (as cron would, from another process)
    down.start()
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "jupyter_mlops.cli",
                "events",
                "deliver",
                "--wait",
                "10",
                "--workspace",
                str(local_workspace.root),
            ],
            check=True,
            capture_output=True,
        )
        # Then every event arrives, each once, in order
        received = down.wait_for(3)
    finally:
        down.stop()
    assert [e["data"]["modelVersion"] for e in received] == ["1", "2", "3"]
    assert len({e["id"] for e in received}) == 3
    assert local_workspace.events.deliveries("later", status="pending") == []


def test_a_crash_between_the_change_and_the_delivery_loses_nothing(local_workspace: Workspace, tmp_path):
    # Given a process that registers a model and dies (no clean exit) before delivering
    receiver = Receiver()
    local_workspace.events.subscribe("crash", webhook=receiver.url)
    script = textwrap.dedent(
        f"""
        import os
        from jupyter_mlops import Workspace
        ws = Workspace({str(local_workspace.root)!r})
        ws.events.deliverer.wake = lambda: None  # dies before its delivery thread would have started
        ws.models.register({str(_model_file(tmp_path))!r}, "churn")
        os._exit(0)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    # When the next process opens the workspace
    receiver.start()
    try:
        reopened = Workspace(local_workspace.root)
        reopened.events.start_background()
        # Then the event left pending is delivered
        [event] = receiver.wait_for(1, timeout=15)
    finally:
        receiver.stop()
    assert event["type"] == "model.registered"


def test_dead_letter_after_max_attempts_then_replay(local_workspace: Workspace, receiver, tmp_path):
    receiver.status = 500
    local_workspace.events.subscribe("flaky", webhook=receiver.url, max_attempts=2)
    local_workspace.models.register(_model_file(tmp_path), "churn")
    local_workspace.events.deliver(timeout=3)
    [dead] = local_workspace.events.deliveries("flaky", status="dead")
    assert dead.attempts == 2 and "HTTP 500" in dead.last_error
    assert len(receiver.requests) == 2
    receiver.status = 200
    assert local_workspace.events.replay("flaky", dead_only=True) == 1
    local_workspace.events.deliver(timeout=3)
    [delivered] = local_workspace.events.deliveries("flaky")
    assert delivered.status == "delivered" and delivered.delivered_at is not None
    # replay of everything since the start delivers the event again, with the same id (receivers dedupe)
    assert local_workspace.events.replay("flaky", since=0) == 1
    local_workspace.events.deliver(timeout=3)
    ids = [e["id"] for e in receiver.events()]
    assert len(ids) == 4 and len(set(ids)) == 1


def test_callback_in_the_kernel(local_workspace: Workspace):
    seen = []
    local_workspace.events.subscribe("me", callback=seen.append, types=["run.failed"])
    with pytest.raises(ValueError), local_workspace.job(autolog=False):
        raise ValueError("bad")
    with local_workspace.job(autolog=False):
        pass
    local_workspace.events.deliver(timeout=3)
    assert [e.type for e in seen] == ["run.failed"]


def test_email_to_a_real_smtp_server(local_workspace: Workspace, tmp_path):
    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self) -> None:
            self.messages: list = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(envelope)
            return "250 OK"

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        local_workspace.events.subscribe(
            "mail", email="ds@example.org", smtp=f"127.0.0.1:{port}", types=["model.registered"]
        )
        local_workspace.models.register(_model_file(tmp_path), "churn")
        local_workspace.events.deliver(timeout=5)
    finally:
        controller.stop()
    [message] = inbox.messages
    assert message.rcpt_tos == ["ds@example.org"]
    text = message.content.decode()
    assert "Subject: [jupyter-mlops] model.registered: models/churn/versions/1" in text
    assert '"modelName": "churn"' in text


def test_bad_subscriptions_are_clear_errors(local_workspace: Workspace, receiver):
    with pytest.raises(InvalidInput, match="exactly one"):
        local_workspace.events.subscribe("x")
    with pytest.raises(InvalidInput, match="Unknown event type"):
        local_workspace.events.subscribe("x", webhook=receiver.url, types=["model.registred"])
    with pytest.raises(InvalidInput, match="http"):
        local_workspace.events.subscribe("x", webhook="ftp://nope")
    local_workspace.events.subscribe("x", webhook=receiver.url)
    with pytest.raises(Exception, match="exists"):
        local_workspace.events.subscribe("x", webhook=receiver.url)
    with pytest.raises(NotFound, match="No subscription named 'y'"):
        local_workspace.events.unsubscribe("y")


def test_cli(local_workspace: Workspace, receiver, tmp_path):
    def cli(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "jupyter_mlops.cli", "events", *args, "--workspace", str(local_workspace.root)],
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    sub = json.loads(cli("subscribe", "ops", "--webhook", receiver.url, "--type", "model.registered", "--json"))
    assert sub["name"] == "ops" and sub["secret"].startswith("whsec_") and sub["types"] == ["model.registered"]
    assert [s["name"] for s in json.loads(cli("list", "--json"))] == ["ops"]
    local_workspace.models.register(_model_file(tmp_path), "churn")
    tailed = json.loads(cli("tail", "--json"))
    assert [e["type"] for e in tailed] == ["model.registered"] and tailed[0]["data"]["modelName"] == "churn"
    receiver.wait_for(1)
    assert json.loads(cli("deliveries", "ops", "--json"))[0]["status"] == "delivered"
    cli("unsubscribe", "ops")
    assert json.loads(cli("list", "--json")) == []
