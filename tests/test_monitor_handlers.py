"""GET /mlops/api/monitors/{name}/history through the real Jupyter server extension."""

from __future__ import annotations

import pytest

from tests import test_handlers as rest
from tests.test_handlers import _classifier, _in_thread, _wait_collected, fetch

jp_server_config, ctx, ws = rest.jp_server_config, rest.ctx, rest.ws  # its fixtures

pytest_plugins = ("pytest_jupyter.jupyter_server",)


async def test_history_route_serves_the_series_filters_and_errors(jp_fetch, ws):
    # Given a monitor that ran twice over what an endpoint collected
    reference = _classifier(ws)
    await _in_thread(ws.endpoints.create, "churn-api")
    try:
        await _in_thread(ws.endpoints.deploy, "churn-api", "blue", "clf:1")
        await _in_thread(ws.endpoints.set_split, "churn-api", traffic={"blue": 100})
        await _in_thread(ws.monitors.create, "churn-drift", "churn-api", reference=reference, schedule="1h")
        runs = []
        for part in range(2):
            rows = reference.iloc[part * 100 : part * 100 + 100].to_numpy().tolist()
            await _in_thread(ws.endpoints.invoke, "churn-api", {"inputs": rows})
            await _in_thread(_wait_collected, ws, "churn-api", 100 * (part + 1))
            runs.append(await _in_thread(ws.monitors.run, "churn-drift"))

        # When the history is read; Then it is the core's series, as JSON, with its chart
        code, body = await fetch(jp_fetch, "monitors", "churn-drift", "history")
        assert code == 200, body
        frame = ws.monitors.history("churn-drift")
        assert body["monitor"] == "churn-drift" and len(body["figures"]) == len(frame)
        assert [f["run_id"] for f in body["figures"]] == frame["run_id"].tolist()
        assert [f["value"] for f in body["figures"]] == pytest.approx(frame["value"].tolist())
        assert {f["signal"] for f in body["figures"]} >= {"drift_score", "drift_share", "prediction_drift", "rows"}
        assert body["chart"]["$schema"].endswith("v5.json") and len(body["chart"]["data"]["values"]) == len(frame)

        # And the Lab's dashboard opens a run's report from a point (drawn with a pointer): the report route serves
        # that run's report; a run of no monitor is a 404
        assert body["chart"]["vconcat"][0]["layer"][1]["mark"]["cursor"] == "pointer"
        response = await jp_fetch("mlops", "api", "monitors", "churn-drift", "report", params={"run": runs[0].run_id})
        assert response.code == 200 and "<html" in response.body.decode().lower()
        assert "sandbox" in response.headers["Content-Security-Policy"]
        code, error = await fetch(jp_fetch, "monitors", "churn-drift", "report", params={"run": "0" * 32})
        assert code == 404 and "is not a run of monitor 'churn-drift'" in error["message"]

        # And since= and signal= filter it
        since = runs[1].window_end.isoformat()  # the time of a run's figures
        code, later = await fetch(
            jp_fetch, "monitors", "churn-drift", "history", params={"since": since, "signal": "drift_score"}
        )
        assert code == 200
        assert {f["run_id"] for f in later["figures"]} == {runs[1].run_id}
        assert {f["signal"] for f in later["figures"]} == {"drift_score"}

        # And bad input answers 400, an unknown monitor 404, each with the API's error body
        code, error = await fetch(jp_fetch, "monitors", "churn-drift", "history", params={"since": "soon"})
        assert code == 400 and error["error"] == "InvalidInput" and "ISO 8601" in error["message"]
        code, error = await fetch(jp_fetch, "monitors", "nope", "history")
        assert code == 404 and error["error"] == "NotFound"
    finally:
        await _in_thread(ws.endpoints.delete, "churn-api")
