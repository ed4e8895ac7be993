"""A rollout in the Endpoints panel of a real JupyterLab (headless Chromium): its progress, state, step and guard
figures while it runs, Abort ending it as aborted, and the automation.ran events of the Events panel."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jupyter_mlops import Workspace
from tests.ui.conftest import SCREENSHOTS
from tests.ui.test_panels import open_section, refresh_all, wait_until
from tests.ui.test_panels import reference as reference  # its fixture

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def ws(lab) -> Workspace:
    return Workspace(lab.workspace)


@pytest.fixture(scope="module")
def endpoint(ws, reference) -> Iterator[str]:
    """``roll-api``: ``clf:1`` as blue (all traffic) and as green (none yet)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(reference.to_numpy(), (reference["f0"] > 0).astype(int))
    ws.models.register(model, "clf")
    ep = ws.endpoints.create("roll-api", auth="none")
    ep.deploy("blue", "clf:1")
    ep.deploy("green", "clf:1")
    ep.set_traffic({"blue": 100, "green": 0})
    yield "roll-api"
    ep.delete()


def test_the_endpoints_panel_shows_a_rollout_and_abort_ends_it(page, ws, endpoint, reference):
    # Given a rollout of green held at its first step (a long bake), with a few requests scored
    ws.rollouts.start(endpoint, "green", steps=[20, 50, 100], bake="1h", guards={"error_rate": 0.05, "min_requests": 5})
    rows = {"inputs": reference.head(3).to_numpy().tolist()}
    wait_until(lambda: ws.rollouts.status(endpoint).figures is not None, timeout=60, what="the first step")
    for _ in range(20):
        ws.endpoints.invoke(endpoint, rows)
    wait_until(
        lambda: ((ws.rollouts.status(endpoint).figures or {}).get("green") or {}).get("requests"),
        timeout=60,
        what="green's figures",
    )
    # When the Endpoints panel refreshes
    panel = open_section(page, "Endpoints")
    refresh_all(page)
    box = panel.locator(f'[data-endpoint="{endpoint}"] .jp-mlops-rollout')
    box.wait_for(timeout=30_000)
    # Then it shows the progress (no step of three done, 20% live), the state and the guards against thresholds
    bar = box.get_by_role("progressbar")
    assert (bar.get_attribute("aria-valuenow"), bar.get_attribute("aria-valuemax")) == ("0", "3")
    head = box.locator(".jp-mlops-rollout-head").inner_text()
    assert "Rollout of green" in head and "running" in head and "step 1/3 · 20% live" in head, head
    guards = box.locator(".jp-mlops-rollout-guards").inner_text()
    assert "error_rate" in guards and "/ 5.0%" in guards and "min_requests" in guards and "/ 5 req" in guards, guards
    # And the sidebar does not scroll sideways at 1280 x 800
    sidebar = page.locator("#jp-mlops-endpoints")
    assert sidebar.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), "the Endpoints panel scrolls sideways"
    box.scroll_into_view_if_needed()
    page.screenshot(path=SCREENSHOTS / "endpoints-rollout.png")
    # When Pause is clicked: paused, and Resume comes back
    box.get_by_role("button", name="Pause").click()
    box.get_by_role("button", name="Resume").wait_for(timeout=30_000)
    assert ws.rollouts.status(endpoint).state == "paused"
    # When Abort is clicked; Then the rollout ends aborted, blue has all the traffic again, and the panel says so
    box.get_by_role("button", name="Abort").click()
    box.locator(".jp-mlops-rollout-state", has_text="aborted").wait_for(timeout=60_000)
    record = ws.rollouts.status(endpoint)
    assert record.state == "aborted", record
    assert ws.endpoints.show(endpoint).traffic == {"blue": 100, "green": 0}
    assert not box.get_by_role("button", name="Abort").count()
    assert "aborted by" in box.inner_text()
    page.screenshot(path=SCREENSHOTS / "endpoints-rollout-aborted.png")


def test_the_events_panel_shows_what_an_automation_did(page, ws, tmp_path):
    # Given an automation that notifies on each registered model; When a model is registered and it runs
    ws.automations.create("tell", on="model.registered", do={"notify": "new version of ${data.modelName}"})
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"\x00weights")
    panel = open_section(page, "Events")
    panel.locator(".jp-mlops-dot-on").wait_for(timeout=30_000)  # the stream is connected
    ws.models.register(weights, "churn")
    ws.automations.run_pending()  # the server's own pass may take it first: one action either way
    # Then its automation.ran event shows the automation, the action, the status and what it did
    event = panel.locator('.jp-mlops-event[data-type="automation.ran"]').first
    event.wait_for(timeout=60_000)
    text = event.inner_text()
    assert "tell" in text and "notify" in text and "succeeded" in text and "new version of churn" in text, text
    page.screenshot(path=SCREENSHOTS / "events-automation.png")
