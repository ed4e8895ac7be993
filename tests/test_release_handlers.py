"""The REST face of the release gates in-process (``jp_fetch``): release state, approvals, promotion refused with
409 then allowed, the comparison of two versions, and hostile input answered 4xx."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tests import test_handlers as rest
from tests.test_handlers import fetch

jp_server_config, ctx, ws, registered = rest.jp_server_config, rest.ctx, rest.ws, rest.registered  # its fixtures

pytest_plugins = ("pytest_jupyter.jupyter_server",)


def gate(ws, name: str, version: int, *, passed: bool) -> str:
    """A gate's verdict recorded the way ``evaluate`` records it: its own run, then the version's tags."""
    from jupyter_mlops.release.evaluate import GATE_PASSED_TAG, RUN_CANDIDATE_TAG, tag_version

    tags = {RUN_CANDIDATE_TAG: f"{name}:{version}", GATE_PASSED_TAG: str(passed).lower()}
    run = ws.client.create_run(ws.experiment_id("gates"), run_name="gate", tags=tags)
    ws.client.set_terminated(run.info.run_id)
    now = datetime.now(timezone.utc)
    tag_version(
        ws, name, version, passed=passed, run_id=run.info.run_id, baseline=None, baseline_alias=None,
        evaluated_at=now, failures=[] if passed else ["accuracy_score fell"],
    )  # fmt: skip
    return run.info.run_id


async def test_release_state_of_a_version_and_of_every_version(jp_fetch, ws, registered):
    # Given version 1 gated (passed) and version 2 never gated nor asked about
    run_id = await rest._in_thread(gate, ws, "churn", 1, passed=True)
    # When the release state is read for one version and for the model
    code, one = await fetch(jp_fetch, "models", "churn", "versions", "1", "release")
    assert code == 200
    # Then the gate's verdict and its run show, with no approval yet
    assert one["gate"] == {
        "verdict": "passed",
        "run_id": run_id,
        "baseline": None,
        "evaluated_at": one["gate"]["evaluated_at"],
    }
    assert one["approval"]["status"] is None
    code, every = await fetch(jp_fetch, "models", "churn", "release")
    assert code == 200
    assert [(v["version"], v["gate"]["verdict"]) for v in every["versions"]] == [(1, "passed"), (2, "none")]


async def test_request_approve_then_promote_moves_the_alias(jp_fetch, ws, registered):
    await rest._in_thread(gate, ws, "churn", 2, passed=True)
    # Given a gated version nobody approved: promotion is refused, naming what is missing
    code, data = await fetch(
        jp_fetch, "models", "churn", "versions", "2", "promote", method="POST", body={"alias": "champion"}
    )
    assert code == 409 and data["error"] == "PromotionRefused" and "approv" in data["message"]
    # When approval is requested, then given
    code, data = await fetch(
        jp_fetch, "models", "churn", "versions", "2", "approval", method="POST", body={"reason": "better on May"}
    )
    assert code == 200 and data["approval"]["status"] == "PendingApproval"
    assert data["approval"]["reason"] == "better on May"
    code, data = await fetch(
        jp_fetch, "models", "churn", "versions", "2", "approve", method="POST", body={"comment": "looked at it"}
    )
    assert code == 200 and data["approval"]["status"] == "Approved"
    assert data["approval"]["comment"] == "looked at it" and data["approval"]["decided_by"]
    # Then promotion moves the alias
    body = {"alias": "champion", "reason": "May retrain"}
    code, data = await fetch(jp_fetch, "models", "churn", "versions", "2", "promote", method="POST", body=body)
    assert code == 200, data
    assert (data["version"], data["moved"], data["previous_version"], data["reason"]) == (2, True, None, "May retrain")
    code, state = await fetch(jp_fetch, "models", "churn", "versions", "2", "release")
    assert state["aliases"] == ["champion"]
    # And a second approval of an approved version is a conflict, a rejection while it holds champion too
    code, data = await fetch(jp_fetch, "models", "churn", "versions", "2", "approve", method="POST", body={})
    assert code == 409 and "already Approved" in data["message"]
    code, data = await fetch(jp_fetch, "models", "churn", "versions", "2", "reject", method="POST", body={})
    assert code == 409 and "champion" in data["message"]


async def test_reject_a_pending_version(jp_fetch, registered):
    await fetch(jp_fetch, "models", "churn", "versions", "1", "approval", method="POST", body={})
    code, data = await fetch(
        jp_fetch, "models", "churn", "versions", "1", "reject", method="POST", body={"comment": "leaks the label"}
    )
    assert code == 200 and data["approval"]["status"] == "Rejected"
    assert data["approval"]["comment"] == "leaks the label"


async def test_compare_two_versions(jp_fetch, registered):
    code, data = await fetch(jp_fetch, "models", "churn", "compare", params={"a": "1", "b": "2"})
    assert code == 200, data
    assert (data["a"]["ref"], data["b"]["ref"]) == ("churn:1", "churn:2")
    assert any("no training run" in m for m in data["missing"])  # both registered from a file
    # an alias names a version too
    await fetch(jp_fetch, "models", "churn", "aliases", "champion", method="PUT", body={"version": 1})
    code, data = await fetch(jp_fetch, "models", "churn", "compare", params={"a": "champion", "b": "2"})
    assert code == 200 and data["a"]["ref"] == "churn:1" and data["a"]["aliases"] == ["champion"]


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"a": "1", "b": "1"}, 400, "compare two different versions"),
        ({"a": "1", "b": "9"}, 404, "Versions: 1, 2"),
        ({"a": "1"}, 400, "b"),
        ({"a": "1", "b": "2", "unchanged": "maybe"}, 400, "unchanged"),
        ({"a": "1", "b": "models:/"}, 400, "NAME:VERSION"),
        ({"a": "1", "b": "x" * 400}, 400, "b"),
    ],
)
async def test_compare_bad_input_is_4xx(jp_fetch, registered, params, status, says):
    code, data = await fetch(jp_fetch, "models", "churn", "compare", params=params)
    assert code == status, data
    assert says in data["message"]


@pytest.mark.parametrize(
    ("parts", "body", "status"),
    [
        (("versions", "1", "approve"), {}, 409),  # nobody asked
        (("versions", "1", "approve"), {"comment": 3}, 400),
        (("versions", "1", "approve"), {"note": "x"}, 400),
        (("versions", "1", "approve"), "[1, 2", 400),
        (("versions", "1", "approval"), {"reason": "x" * 6000}, 400),
        (("versions", "9", "approval"), {}, 404),
        (("versions", "0", "approval"), {}, 400),
        (("versions", "1", "promote"), {"alias": ""}, 400),
        (("versions", "1", "promote"), {"alias": "champion"}, 409),
        (("versions", "nope", "release"), None, 404),
    ],
)
async def test_release_verbs_bad_input_is_4xx(jp_fetch, registered, parts, body, status):
    method = "GET" if body is None else "POST"
    code, data = await fetch(jp_fetch, "models", "churn", *parts, method=method, body=body)
    assert code == status, data
    assert data["message"]


async def test_unknown_model_release_is_404(jp_fetch, registered):
    code, data = await fetch(jp_fetch, "models", "chrun", "release")
    assert code == 404 and "churn" in data["message"]


async def test_a_browser_without_the_xsrf_header_may_not_approve(jp_fetch, jp_serverapp, registered):
    # Given a browser session (the login cookie, obtained with the token through the login form)
    browser, xsrf = await rest.browser_session(jp_fetch, jp_serverapp)
    # When it asks for an approval without X-XSRFToken: 403 and nothing changed; with it: done
    parts = ("models", "churn", "versions", "1", "approval")
    assert (await fetch(jp_fetch, *parts, method="POST", body={}, headers=browser))[0] == 403
    assert (await fetch(jp_fetch, "models", "churn", "versions", "1", "release"))[1]["approval"]["status"] is None
    code, data = await fetch(jp_fetch, *parts, method="POST", body={}, headers={**browser, "X-XSRFToken": xsrf})
    assert code == 200 and data["approval"]["status"] == "PendingApproval"
