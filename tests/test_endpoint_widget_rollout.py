"""The notebook's endpoint widget shows the endpoint's rollout (progress, state, step, guard figures) and aborts it,
on a real endpoint with a real controller; the recorded shapes of ended rollouts are checked on the widget alone."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

from jupyter_mlops.rollouts import Rollout
from jupyter_mlops.widgets.endpoint import EndpointPanel, guard_figures, rollout_shown
from tests.test_rollouts import endpoint, ws  # noqa: F401  (their fixtures: a workspace with calc, an endpoint)
from tests.waiting import eventually


def test_the_widget_follows_a_rollout_and_its_abort_button_rolls_it_back(ws, endpoint):  # noqa: F811
    # Given an endpoint without a rollout: the widget shows none
    panel = EndpointPanel(endpoint, ws)
    assert panel.rollout is None and panel.rollout_box.layout.display == "none"
    # When green starts a rollout with a long bake and the widget refreshes
    ws.endpoints.deploy(endpoint, "green", "calc:2")
    ws.rollouts.start(endpoint, "green", steps=[20, 50, 100], bake="1h", guards={"min_requests": 1})
    assert eventually(lambda: ws.rollouts.status(endpoint).figures is not None, timeout=60)  # the step is applied
    panel.refresh()
    # Then it shows the progress (no step done of three), the state, the step and each guard against its threshold
    assert panel.rollout_box.layout.display == "flex"
    bar = panel.rollout_progress
    assert (bar.value, bar.max, bar.description, bar.bar_style) == (0, 3, "20% live", "info")
    text = panel.rollout_info.value
    assert "green</b> running · step 1/3" in text and "20% → 50% → 100%" in text, text
    assert "error_rate - / 1.00%" in text and "min_requests 0 req / 1 req" in text, text
    assert not panel.abort_button.disabled
    # And its Abort button rolls back: the record is aborted, traffic is blue's again, the button is off
    panel.abort_button.click()
    assert panel.rollout.state == "aborted", panel.rollout
    assert ws.endpoints.show(endpoint).traffic == {"blue": 100}
    assert (bar.description, bar.bar_style) == ("aborted", "danger") and panel.abort_button.disabled
    assert "aborted by" in panel.rollout_info.value
    assert panel.traffic["blue"].value == 100  # the split boxes were read again


def _record(**changes: object) -> Rollout:
    now = datetime.now(timezone.utc)
    base = Rollout(
        id=1,
        endpoint="api",
        deployment="green",
        model=None,
        state="running",
        step=2,
        steps=[10, 50, 100],
        percent=50,
        bake_s=60.0,
        guards={"error_rate": 0.01, "p99_ms": 50.0, "min_requests": 100.0},
        figures={"green": {"requests": 240, "errors": 1, "error_rate": 1 / 240, "p99_ms": 12.5}},
        reason=None,
        promote=None,
        controller_pid=None,
        created_by="tester",
        created_at=now,
        updated_at=now,
        ended_at=None,
    )
    return dataclasses.replace(base, **changes)


def test_progress_state_and_guards_of_recorded_rollouts(ws, endpoint):  # noqa: F811
    panel = EndpointPanel(endpoint, ws)
    # a running rollout at its second step: one step done, the figures against the thresholds
    panel.show_rollout(_record())
    assert (panel.rollout_progress.value, panel.rollout_progress.max) == (1, 3)
    assert guard_figures(panel.rollout) == [
        ("error_rate", 1 / 240, 0.01),
        ("p99_ms", 12.5, 50.0),
        ("min_requests", 240, 100.0),
    ]
    assert "error_rate 0.42% / 1.00% · p99_ms 12.5 ms / 50.0 ms · min_requests 240 req / 100 req" in (
        panel.rollout_info.value
    )
    # completed: every step done, green; rolled back: red with the guard's reason; paused: amber
    now = datetime.now(timezone.utc)
    panel.show_rollout(_record(state="completed", step=3, percent=100, ended_at=now))
    assert (panel.rollout_progress.value, panel.rollout_progress.bar_style) == (3, "success")
    assert panel.abort_button.disabled
    reason = "error_rate of green was 0.2, over the threshold 0.01"
    panel.show_rollout(_record(state="rolled_back", step=1, ended_at=now, reason=reason))
    assert (panel.rollout_progress.value, panel.rollout_progress.bar_style) == (0, "danger")
    assert reason in panel.rollout_info.value
    panel.show_rollout(_record(state="paused"))
    assert panel.rollout_progress.bar_style == "warning" and not panel.abort_button.disabled
    # one that ended long ago is not shown any more
    old = _record(state="completed", ended_at=now - timedelta(hours=2))
    assert not rollout_shown(old)
    panel.show_rollout(old)
    assert panel.rollout_box.layout.display == "none"
