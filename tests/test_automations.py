"""Automations: rules on the durable event log, acted on at least once and never twice, by competing runners and
after a runner is killed mid-action."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_mlops import Conflict, InvalidInput, NotFound, Workspace
from tests.test_pipelines import _notebook
from tests.waiting import eventually

BIN = Path(sys.executable).parent


def _register(ws: Workspace, name: str, stage: str, source: Path) -> None:
    ws.models.register(source, name, tags={"stage": stage})


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"weights")
    return path


def test_an_automation_acts_once_per_matching_event_fills_in_the_event_and_keeps_its_cooldown(
    local_workspace: Workspace, source: Path
):
    ws = local_workspace
    _register(ws, "churn", "candidate", source)  # before the automation: not acted on
    ws.automations.create(
        "tell",
        on="model.registered",
        where={"subject": "models/churn/*", "data.modelTags.stage": "candidate"},
        do={"notify": "candidate ${data.modelName}:${data.modelVersion}"},
    )
    _register(ws, "churn", "candidate", source)
    _register(ws, "churn", "other", source)  # the condition does not hold
    _register(ws, "fraud", "candidate", source)  # nor the subject
    acted = ws.automations.run_pending()
    assert [(r.status, r.result["message"]) for r in acted] == [("succeeded", "candidate churn:2")]
    assert ws.automations.run_pending() == []  # the cursor moved on: nothing twice
    notes = ws.events.tail(types=["automation.notification"])
    assert [n.data["message"] for n in notes] == ["candidate churn:2"] and notes[0].subject == "automations/tell"
    ran = ws.events.tail(types=["automation.ran"])
    assert [(e.data["automation"], e.data["status"], e.data["eventType"]) for e in ran] == [
        ("tell", "succeeded", "model.registered")
    ]

    # A cooldown skips events within it of the last action, saying why
    ws.automations.create("slow", on="model.registered", do={"notify": "again"}, cooldown="1h")
    _register(ws, "churn", "x", source)
    _register(ws, "churn", "y", source)
    runs = ws.automations.run_pending()
    assert sorted(r.status for r in runs if r.automation == "slow") == ["skipped", "succeeded"]
    skipped = next(r for r in ws.automations.runs("slow") if r.status == "skipped")
    assert skipped.reason.startswith("cooldown: it last acted at") and "within 3600 s" in skipped.reason


def test_bad_automations_are_refused_naming_the_problem(local_workspace: Workspace, tmp_path: Path):
    create = local_workspace.automations.create
    cases = [
        (dict(on="model.nope", do={"notify": "x"}), "on: model.nope: choose event types from run.completed"),
        (dict(on="automation.ran", do={"notify": "x"}), "cannot react to automations' own events"),
        (dict(on="model.registered", do={"notify": "x", "pipeline": "p.yaml"}), "names exactly one of"),
        (dict(on="model.registered", do={"evaluate": "m:1"}), "name the held-out rows"),
        (dict(on="model.registered", do={"pipeline": "missing.yaml"}), "no pipeline spec at"),
        (dict(on="model.registered", do={"notify": "x", "alias": "c"}), "A notify action takes nothing else"),
        (dict(on="model.registered", do={"rollout": "churn"}), "name the deployment to roll out"),
        (dict(on="model.registered", do={"notify": "x"}, where={"owner": "me"}), "'owner' is not an event field"),
        (dict(on="model.registered", do={"notify": "x"}, cooldown="soon"), "Cannot read the cooldown 'soon'"),
    ]
    for kwargs, message in cases:
        with pytest.raises(InvalidInput) as info:
            create("a", base=tmp_path, **kwargs)
        assert message in str(info.value), (kwargs, str(info.value))
    assert local_workspace.automations.list() == []
    with pytest.raises(InvalidInput, match="not a valid automation name"):
        create("a/b", on="model.registered", do={"notify": "x"})
    create("a", on="model.registered", do={"notify": "x"})
    with pytest.raises(Conflict, match="An automation named 'a' exists"):
        create("a", on="model.registered", do={"notify": "x"})
    with pytest.raises(NotFound, match="No automation named 'b'; automations: a"):
        local_workspace.automations.runs("b")


def test_two_runners_act_on_each_event_exactly_once(local_workspace: Workspace, source: Path):
    ws = local_workspace
    ws.automations.create("count", on="model.registered", do={"notify": "${data.modelVersion}"})
    for _ in range(12):
        _register(ws, "churn", "candidate", source)
    command = [str(BIN / "jupyter"), "mlops", "automations", "run", "--once", "--workspace", str(ws.root), "--json"]
    runners = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [runner.communicate(timeout=300) for runner in runners]
    assert all(r.returncode == 0 for r in runners), [err for _, err in outputs]
    taken = [run["event_id"] for out, _ in outputs for run in json.loads(out)]
    runs = ws.automations.runs("count")
    assert len(runs) == 12 and sorted(taken) == sorted(r.event_id for r in runs)  # each event by one runner
    messages = sorted(int(e.data["message"]) for e in ws.events.tail(types=["automation.notification"], limit=100))
    assert messages == list(range(1, 13))


def test_an_action_whose_runner_is_killed_is_run_again_by_the_next_runner(local_workspace: Workspace, tmp_path):
    ws = local_workspace
    started, release = tmp_path / "started", tmp_path / "release"
    code = (
        "import time\nfrom pathlib import Path\nPath(started).write_text(version)\n"
        "while not Path(release).exists():\n    time.sleep(0.05)\nPath(out).write_text(version)"
    )
    _notebook(tmp_path / "retrain.ipynb", "version = ''\nstarted = ''\nrelease = ''\nout = 'out.txt'", code)
    (tmp_path / "pipeline.yaml").write_text(
        "name: retrain\nparameters: {version: '0'}\nsteps:\n"
        f"  train: {{notebook: retrain.ipynb, parameters: {{version: '${{version}}', started: '{started}', "
        f"release: '{release}'}}, outputs: {{out: out.txt}}}}\n"
    )
    ws.automations.create(
        "retrain",
        on="model.registered",
        do={"pipeline": "pipeline.yaml", "parameters": {"version": "v${data.modelVersion}"}},
        base=tmp_path,
    )
    ws.models.register(tmp_path / "pipeline.yaml", "churn")
    command = [str(BIN / "jupyter"), "mlops", "automations", "run", "--workspace", str(ws.root)]
    runner = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert eventually(lambda: started.exists(), timeout=180), "the pipeline action never started in the runner"
    finally:
        os.killpg(runner.pid, signal.SIGKILL)  # the runner and the kernel it started, mid-action
        runner.wait()
    [orphan] = ws.automations.runs("retrain")
    assert orphan.status == "running" and orphan.attempts == 1

    release.write_text("go")
    [taken] = ws.automations.run_pending()  # another process: the dead runner's action is run again
    assert taken.status == "succeeded" and taken.attempts == 2 and taken.result["status"] == "FINISHED"
    assert (tmp_path / "out.txt").read_text() == "v1"
    assert ws.automations.run_pending() == []
    finished = [e for e in ws.events.tail(types=["automation.ran"]) if e.data["status"] == "succeeded"]
    assert len(finished) == 1


def test_an_automations_file_creates_them_and_the_cli_lists_their_actions(local_workspace: Workspace, tmp_path, source):
    (tmp_path / "automations.yaml").write_text(
        "- name: tell\n  on: model.registered\n  do: {notify: 'new ${data.modelName}'}\n  cooldown: 30s\n"
        "- name: drift\n  on: [drift.detected]\n  where: {subject: 'monitors/churn*'}\n  do: {notify: drifted}\n"
    )
    cli = [str(BIN / "jupyter"), "mlops", "--workspace", str(local_workspace.root), "automations"]
    applied = subprocess.run(
        [*cli, "apply", str(tmp_path / "automations.yaml"), "--json"], capture_output=True, text=True
    )
    assert applied.returncode == 0, applied.stderr
    assert [(a["name"], a["on"], a["cooldown_s"]) for a in json.loads(applied.stdout)] == [
        ("tell", ["model.registered"], 30.0),
        ("drift", ["drift.detected"], 0.0),
    ]
    _register(local_workspace, "churn", "candidate", source)
    assert subprocess.run([*cli, "run", "--once"], capture_output=True).returncode == 0
    shown = subprocess.run([*cli, "runs", "tell", "--json"], capture_output=True, text=True)
    assert [(r["status"], r["result"]["message"]) for r in json.loads(shown.stdout)] == [("succeeded", "new churn")]
    bad = subprocess.run([*cli, "create", "x", "--on", "model.registered"], capture_output=True, text=True)
    assert bad.returncode != 0 and "Give exactly one action" in bad.stderr


def test_a_rollout_action_asks_ws_rollouts_and_records_its_refusal(local_workspace: Workspace, source: Path):
    ws = local_workspace
    ws.automations.create(
        "roll", on="model.registered", do={"rollout": "nowhere", "deployment": "green", "steps": [50, 100]}
    )
    _register(ws, "churn", "candidate", source)
    [run] = ws.automations.run_pending()
    assert run.status == "failed" and "nowhere" in run.reason  # the rollout's own refusal, kept with the action
