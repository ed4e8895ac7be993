"""Rollouts and automations over REST, in-process with pytest-jupyter's ``jp_fetch``: a real endpoint, live traffic
from a thread, the real controller process; every wait is on the served record."""

from __future__ import annotations

import asyncio
import time

import pytest
import yaml

from tests import test_handlers as rest
from tests.test_handlers import _in_thread, browser_session, fetch
from tests.test_rollouts import Traffic, _models
from tests.test_schema import SPEC, _closed, _validator

jp_server_config, ctx, ws = rest.jp_server_config, rest.ctx, rest.ws  # its fixtures

pytest_plugins = ("pytest_jupyter.jupyter_server",)
DONE = ("completed", "rolled_back", "aborted")


@pytest.fixture
def endpoint(ws):
    """``calc:1`` (blue, all live traffic) and ``calc:2`` registered; the endpoint is deleted afterwards."""
    doubler, _ = _models()
    ws.models.register(doubler, "calc")
    ws.models.register(doubler, "calc")
    ep = ws.endpoints.create("roll-api", auth="none")
    try:
        ep.deploy("blue", "calc:1")
        ep.set_traffic({"blue": 100})
        yield "roll-api"
    finally:
        ws.endpoints.delete("roll-api")


async def _until(jp_fetch, parts: tuple[str, ...], check, timeout: float = 120.0) -> dict:
    """GET ``parts`` until ``check(body)``; the last body otherwise (the caller's assert shows it)."""
    deadline = time.monotonic() + timeout
    while True:
        code, body = await fetch(jp_fetch, *parts)
        if (code == 200 and check(body)) or time.monotonic() >= deadline:
            return body
        await asyncio.sleep(0.2)


def _matches_spec(path: str, body: dict) -> list[str]:
    spec = _closed(yaml.safe_load(SPEC.read_text()))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in _validator(spec, path).iter_errors(body)]


async def test_a_rollout_started_over_rest_goes_through_its_steps(jp_fetch, ws, endpoint):
    # Given live traffic on blue; When green is rolled out from calc:2 with a short bake
    with Traffic(ws, endpoint):
        body = {
            "deployment": "green",
            "model": "calc:2",
            "steps": [50, 100],
            "bake": "1s",
            "guards": {"error_rate": 0.05, "min_requests": 5},
        }
        code, started = await fetch(jp_fetch, "endpoints", endpoint, "rollout", method="POST", body=body)
        assert code == 201, started
        assert (started["state"], started["step"], started["percent"]) == ("running", 1, 50)
        # Then its status, read over REST, goes to completed with green's figures
        done = await _until(jp_fetch, ("endpoints", endpoint, "rollout"), lambda b: b["state"] in DONE)
    assert done["state"] == "completed", done
    assert (done["step"], done["steps"]) == (2, [50, 100])
    assert done["figures"]["green"]["requests"] >= 5 and done["figures"]["green"]["errors"] == 0
    assert (await _in_thread(ws.endpoints.show, endpoint)).traffic == {"green": 100}
    assert not _matches_spec("/endpoints/{name}/rollout", done)
    # And the list has it, for this endpoint and over all
    code, listed = await fetch(jp_fetch, "rollouts", params={"endpoint": endpoint})
    assert code == 200 and [r["id"] for r in listed["rollouts"]] == [done["id"]]
    assert not _matches_spec("/rollouts", listed)
    assert (await fetch(jp_fetch, "rollouts", params={"endpoint": "other"}))[1] == {"rollouts": []}


async def test_pause_resume_and_abort_over_rest_with_a_browsers_xsrf(jp_fetch, jp_serverapp, ws, endpoint):
    # Given a rollout with a long bake (it stays at its first step)
    await _in_thread(ws.endpoints.deploy, endpoint, "green", "calc:2")
    body = {"deployment": "green", "steps": [20, 100], "bake": "1h", "guards": {"min_requests": 1}}
    assert (await fetch(jp_fetch, "endpoints", endpoint, "rollout", method="POST", body=body))[0] == 201
    browser, xsrf = await browser_session(jp_fetch, jp_serverapp)
    # When a browser pauses it without the XSRF header: refused; with it: paused, then resumed
    code, _ = await fetch(jp_fetch, "endpoints", endpoint, "rollout", "pause", method="POST", body={}, headers=browser)
    assert code == 403
    with_xsrf = {**browser, "X-XSRFToken": xsrf}
    verb = ("endpoints", endpoint, "rollout")
    code, paused = await fetch(jp_fetch, *verb, "pause", method="POST", body={}, headers=with_xsrf)
    assert (code, paused["state"]) == (200, "paused"), paused
    code, again = await fetch(jp_fetch, *verb, "pause", method="POST", body={})
    assert code == 409 and "paused" in again["message"]
    code, resumed = await fetch(jp_fetch, *verb, "resume", method="POST", body={})
    assert (code, resumed["state"]) == (200, "running"), resumed
    await _until(jp_fetch, verb, lambda b: b["figures"] is not None, timeout=60)  # the controller applied the step
    # And abort rolls back: the answer is the ended rollout, traffic is blue's again
    code, aborted = await fetch(jp_fetch, *verb, "abort", method="POST", body={})
    assert (code, aborted["state"]) == (200, "aborted"), aborted
    assert aborted["reason"].startswith("aborted by") and aborted["ended_at"]
    assert (await _in_thread(ws.endpoints.show, endpoint)).traffic == {"blue": 100}
    code, late = await fetch(jp_fetch, *verb, "abort", method="POST", body={})
    assert code == 409 and "aborted" in late["message"], late


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"deployment": "green", "model": "calc:2", "steps": [50, 20]}, "step"),
        ({"deployment": "green", "model": "calc:2", "guards": {"latency": 3}}, "latency"),
        ({"deployment": "green", "model": "calc:2", "bake": "soon"}, "soon"),
        ({"deployment": "green", "model": "calc:2", "promote": True, "steps": [10, 50]}, "100"),
        ({"deployment": "green", "colour": "green"}, "colour"),
        ({"model": "calc:2"}, "deployment"),
        ({"deployment": "green", "steps": "ten"}, "steps"),
    ],
)
async def test_a_bad_rollout_is_400_and_starts_nothing(jp_fetch, ws, endpoint, body, says):
    code, data = await fetch(jp_fetch, "endpoints", endpoint, "rollout", method="POST", body=body)
    assert code == 400, data
    assert says in data["message"] and data["error"] == "InvalidInput", data
    assert (await fetch(jp_fetch, "endpoints", endpoint, "rollout"))[0] == 404
    assert [d.name for d in (await _in_thread(ws.endpoints.show, endpoint)).deployments] == ["blue"]


async def test_unknown_things_are_404_and_verbs_without_a_rollout_409(jp_fetch, endpoint):
    code, data = await fetch(jp_fetch, "endpoints", endpoint, "rollout")
    assert code == 404 and data["error"] == "NotFound" and "no rollout" in data["message"]
    body = {"deployment": "green"}  # neither deployed nor given a model
    code, data = await fetch(jp_fetch, "endpoints", endpoint, "rollout", method="POST", body=body)
    assert code == 404 and "blue" in data["message"], data
    code, data = await fetch(jp_fetch, "endpoints", "nowhere", "rollout", method="POST", body=body)
    assert code == 404 and "roll-api" in data["message"], data
    code, data = await fetch(jp_fetch, "endpoints", endpoint, "rollout", "abort", method="POST", body={})
    assert code == 404 and data["error"] == "NotFound", data  # no rollout at all


async def test_automations_list_show_runs_and_delete(jp_fetch, ws, tmp_path):
    # Given an automation that notifies on each registered model, and one model registered after it
    await _in_thread(ws.automations.create, "tell", on="model.registered", do={"notify": "new ${data.modelName}"})
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"\x00weights")
    await _in_thread(ws.models.register, weights, "churn")
    await _in_thread(ws.automations.run_pending)  # the server's own pass may take it first: one action either way
    # When the automations and their runs are read over REST
    code, listed = await fetch(jp_fetch, "automations")
    assert code == 200 and [a["name"] for a in listed["automations"]] == ["tell"]
    assert listed["automations"][0]["on"] == ["model.registered"] and not _matches_spec("/automations", listed)
    code, one = await fetch(jp_fetch, "automations", "tell")
    assert code == 200 and one["do"] == {"notify": "new ${data.modelName}"}
    assert not _matches_spec("/automations/{name}", one)
    runs = await _until(jp_fetch, ("automations", "tell", "runs"), lambda b: b["runs"] and b["runs"][0]["ended_at"])
    # Then the one action is there with its event and status
    assert [(r["event_type"], r["status"]) for r in runs["runs"]] == [("model.registered", "succeeded")], runs
    assert not _matches_spec("/automations/{name}/runs", runs)
    assert (await fetch(jp_fetch, "automations", "tell", "runs", params={"limit": "0"}))[0] == 400
    # And deleting it keeps nothing to list; a second delete and an unknown name are 404 naming what exists
    code, _ = await fetch(jp_fetch, "automations", "tell", method="DELETE")
    assert code == 204
    assert (await fetch(jp_fetch, "automations"))[1] == {"automations": []}
    code, data = await fetch(jp_fetch, "automations", "tell", method="DELETE")
    assert code == 404 and "none" in data["message"]
    assert (await fetch(jp_fetch, "automations", "tell", "runs"))[0] == 404
