"""A pipeline step's ``gate:``: its metrics output judged against thresholds and against the champion; a failed gate
stops what depends on it and marks the run GATED (not FAILED), saying which metric missed by how much."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jupyter_mlops import InvalidInput, Workspace, cli, pipelines
from jupyter_mlops.exceptions import PromotionRefused
from tests.test_pipelines import _notebook

TRAIN = "from pathlib import Path\nPath(model).mkdir(exist_ok=True)\n(Path(model) / 'quality.txt').write_text(str(q))"
EVALUATE = (
    "import json\nfrom pathlib import Path\n"
    "json.dump({'accuracy': float((Path(model) / 'quality.txt').read_text()), 'rows': 100}, open(metrics, 'w'))"
)
SPEC = """name: gated
parameters: {q: 0.8}
steps:
  train:
    notebook: train.ipynb
    parameters: {q: "${q}"}
    outputs: {model: model/}
    register: {name: gated-model}
  evaluate:
    notebook: evaluate.ipynb
    inputs: {model: train.model}
    outputs: {metrics: metrics.json}
    gate:
      thresholds: {accuracy: {threshold: 0.5, min_absolute_change: 0.0}}
  ship:
    notebook: ship.ipynb
    inputs: {metrics: evaluate.metrics}
    outputs: {out: shipped.txt}
"""


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    _notebook(tmp_path / "train.ipynb", "q = 0.0\nmodel = 'model'", TRAIN)
    _notebook(tmp_path / "evaluate.ipynb", "model = 'model'\nmetrics = 'metrics.json'", EVALUATE)
    _notebook(tmp_path / "ship.ipynb", "metrics = ''\nout = ''", "open(out, 'w').write('shipped')")
    path = tmp_path / "pipeline.yaml"
    path.write_text(SPEC)
    return path


def test_a_gate_passes_without_a_champion_then_stops_a_worse_candidate_with_the_run_gated(
    local_workspace: Workspace, spec: Path, capsys
):
    ws = local_workspace
    # Given no champion yet: only the absolute threshold applies, and it holds
    first = pipelines.run(spec, workspace=ws)
    assert first.status == "FINISHED", first.summary()
    gate = first.steps["evaluate"].gate
    assert gate is not None and gate.passed and gate.candidate == "gated-model:1" and gate.baseline is None
    assert "no version of gated-model is champion yet" in (gate.note or "")
    assert first.steps["ship"].status == "succeeded"
    tags = ws.client.get_model_version("gated-model", "1").tags
    assert tags["mlops.gate.passed"] == "true" and float(tags["mlops.gate.metric.accuracy"]) == 0.8
    assert tags["mlops.gate.run_id"] == first.steps["evaluate"].run_id

    # The pipeline's gate counts for promotion, as mlops.evaluate's does
    ws.models.request_approval("gated-model", 1, reason="first model")
    ws.models.approve("gated-model", 1, comment="looks fine")
    ws.models.promote("gated-model", 1, reason="first champion")

    # When a worse model comes: the gate compares it with the champion's figures and stops the run
    workspace = ["--workspace", str(ws.root)]
    code = cli.main(["pipeline", "run", str(spec), "-p", "q=0.6", *workspace, "--json"])
    out, err = capsys.readouterr()
    record = json.loads(out)
    assert code == 1 and record["status"] == "GATED"
    assert {k: v["status"] for k, v in record["steps"].items()} == {
        "train": "succeeded",
        "evaluate": "gated",
        "ship": "skipped",
    }
    verdict = record["steps"]["evaluate"]["gate"]
    assert verdict["passed"] is False and verdict["baseline"] == "gated-model:1"
    assert verdict["metrics"]["accuracy"]["baseline"] == 0.8 and verdict["metrics"]["accuracy"]["candidate"] == 0.6
    assert verdict["metrics"]["accuracy"]["change"] == pytest.approx(-0.2)
    assert "minimum absolute change check failed" in verdict["failures"][0]
    assert "[pipeline] evaluate: gated (gate failed against gated-model:1 (champion)" in err
    assert ws.client.get_model_version("gated-model", "2").tags["mlops.gate.passed"] == "false"
    with pytest.raises(PromotionRefused, match="gate failed"):
        ws.models.promote("gated-model", 2)

    # The history says GATED (MLflow's run is FINISHED, with the reason)
    assert cli.main(["pipeline", "runs", "gated", *workspace, "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in runs] == ["GATED", "FINISHED"]
    assert runs[0]["steps"] == {"train": "succeeded", "evaluate": "gated", "ship": "skipped"}

    # Nothing changed since the champion's run: every step reused, the champion is not compared with itself
    again = pipelines.run(spec, workspace=ws)
    assert again.status == "FINISHED" and {s.status for s in again.steps.values()} == {"reused"}
    assert again.steps["evaluate"].gate.note == "gated-model:1 is already champion: thresholds only"


@pytest.mark.parametrize(
    ("gate", "expected"),
    [
        ("{thresholds: {accuracy: {threshold: 0.5}}}", None),
        ("{thresholds: {weird: {threshold: 0.5}}}", "Say whether greater is better for 'weird'"),
        ("{thresholds: {accuracy: {limit: 1}}}", "Unknown option(s) limit"),
        ("{thresholds: {}}", "steps.evaluate.gate.thresholds"),
        ("{thresholds: {accuracy: {threshold: 0.5}}, when: now}", "allowed keys: thresholds, model, baseline"),
    ],
)
def test_gate_spec_errors_name_the_line_and_the_key(spec: Path, gate: str, expected: str | None):
    written = "gate:\n      thresholds: {accuracy: {threshold: 0.5, min_absolute_change: 0.0}}"
    spec.write_text(SPEC.replace(written, f"gate: {gate}"))
    if expected is None:
        assert pipelines.validate(spec).steps  # a valid gate
        return
    with pytest.raises(InvalidInput, match=r"pipeline\.yaml:\d+: steps\.evaluate\.gate") as info:
        pipelines.validate(spec)
    assert expected in str(info.value)


def test_a_gate_needs_a_metrics_output_and_a_model_to_compare_with(spec: Path):
    _notebook(spec.parent / "evaluate.ipynb", "model = 'model'\nscores = 'metrics.json'", "pass")
    renamed = SPEC.replace("outputs: {metrics: metrics.json}", "outputs: {scores: metrics.json}")
    spec.write_text(renamed.replace("evaluate.metrics", "evaluate.scores"))
    with pytest.raises(InvalidInput, match="a gate reads its figures from the step's `metrics` output"):
        pipelines.validate(spec)
    _notebook(spec.parent / "evaluate.ipynb", "model = 'model'\nmetrics = 'metrics.json'", "pass")
    spec.write_text(SPEC.replace("    register: {name: gated-model}\n", ""))
    with pytest.raises(InvalidInput, match="comparing with the champion needs a model"):
        pipelines.validate(spec)
