"""Release gates against a real MLflow store and real scikit-learn models: the evaluation gate, approvals, the
policy, promotion (two processes racing for one alias included) and their CLI."""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from jupyter_mlops import Conflict, InvalidInput, NotFound, Workspace
from jupyter_mlops.exceptions import PromotionRefused
from jupyter_mlops.release.thresholds import check, parse_threshold_option, parse_thresholds

BIN = Path(sys.executable).parent
FAST = {"log_model_explainability": False}  # SHAP plots cost seconds and are not what these tests check
FEATURES = ["tenure", "spend", "calls", "age"]


# -- fixtures: one workspace and the saved models for the whole module --------------------------------------
@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("release") / "ws"


@pytest.fixture(scope="module")
def ws(root) -> Workspace:
    return Workspace(root, metadata_uri=f"sqlite:///{root}/mlops.db")


@pytest.fixture(scope="module")
def data():
    import pandas as pd
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=600, n_features=4, n_informative=3, n_redundant=0, random_state=0)
    frame = pd.DataFrame(X, columns=FEATURES)
    return frame[:300], y[:300], frame[300:].assign(label=y[300:])


@pytest.fixture(scope="module")
def saved(tmp_path_factory, data) -> dict[str, Path]:
    """MLflow model folders with a signature (saved once, registered as often as a test needs)."""
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.datasets import make_regression
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from sklearn.tree import DecisionTreeClassifier

    from jupyter_mlops import _mlflow

    X, y, _ = data
    Xr, yr = make_regression(n_samples=300, n_features=4, noise=5.0, random_state=0)
    Xr = pd.DataFrame(Xr, columns=FEATURES)
    folder = tmp_path_factory.mktemp("models")
    models = {
        "strong": (LogisticRegression().fit(X, y), X),
        "weak": (DecisionTreeClassifier(max_depth=1, random_state=0).fit(X, y), X),
        "linear": (LinearRegression().fit(Xr[:200], yr[:200]), Xr),
        "ridge": (Ridge(alpha=500.0).fit(Xr[:200], yr[:200]), Xr),
    }
    paths = {}
    with _mlflow.quiet("mlflow.sklearn"):
        for name, (model, inputs) in models.items():
            paths[name] = folder / name
            mlflow.sklearn.save_model(
                model,
                str(paths[name]),
                serialization_format="cloudpickle",
                pip_requirements=["scikit-learn"],
                signature=infer_signature(inputs[:5], model.predict(inputs[:5])),
            )
    paths["regression_test"] = folder / "regression.parquet"
    Xr[200:].assign(label=yr[200:]).to_parquet(paths["regression_test"])
    return paths


@pytest.fixture
def name(request) -> str:
    return request.node.name.removeprefix("test_")[:60].replace("[", "-").replace("]", "")


def _register(ws: Workspace, name: str, saved: dict[str, Path], *kinds: str) -> list[int]:
    return [ws.models.register(saved[kind], name).version for kind in kinds]


def _champion(ws: Workspace, name: str, version: int) -> None:
    """A first champion, set directly (no gate exists before the first one)."""
    ws.models.set_alias(name, "champion", version)


def _approved(ws: Workspace, name: str, version: int, monkeypatch, *, by: str = "bob") -> None:
    ws.models.request_approval(name, version, reason="ready")
    monkeypatch.setenv("MLOPS_USER", by)
    ws.models.approve(name, version, comment="looked at it")
    monkeypatch.setenv("MLOPS_USER", "tester")


# -- the evaluation gate ----------------------------------------------------------------------------------------------
def test_a_better_candidate_passes_against_the_champion_in_one_recorded_run(ws, saved, data, name):
    weak, strong = _register(ws, name, saved, "weak", "strong")
    _champion(ws, name, weak)
    _, _, test = data
    result = ws.models.evaluate(f"{name}:{strong}", test, evaluator_config=FAST)
    assert result.passed and result.failures == []
    assert result.baseline == f"{name}:{weak}" and result.baseline_alias == "champion"
    accuracy = result.metrics["accuracy_score"]
    assert accuracy.candidate > accuracy.baseline and accuracy.passed is True
    assert accuracy.change == pytest.approx(accuracy.candidate - accuracy.baseline)
    assert accuracy.threshold == {"min_absolute_change": 0.0, "greater_is_better": True}
    assert result.metrics["f1_score"].passed is None  # shown side by side, not judged
    # one MLflow run holds both versions' metrics, the thresholds and the verdict
    run = ws.client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["candidate_accuracy_score"] == pytest.approx(accuracy.candidate)
    assert run.data.metrics["baseline_accuracy_score"] == pytest.approx(accuracy.baseline)
    assert run.data.params["threshold.accuracy_score"] == "min_absolute_change=0.0,greater_is_better=True"
    assert run.data.tags["mlops.gate.passed"] == "true"
    verdict = json.loads(Path(ws.client.download_artifacts(result.run_id, "verdict.json")).read_text())
    assert verdict["passed"] is True and verdict["metrics"]["accuracy_score"]["baseline"] == accuracy.baseline
    # the candidate version carries the verdict and the run
    tags = ws.client.get_model_version(name, str(strong)).tags
    assert tags["mlops.gate.passed"] == "true" and tags["mlops.gate.run_id"] == result.run_id
    assert [e.type for e in ws.events.tail(types=["model.evaluated"])][-1] == "model.evaluated"
    # drawn side by side: a text table and an HTML one, and JSON with MLflow's metric names
    text = str(result)
    assert "PASSED" in text and "BASELINE" in text and "CANDIDATE" in text
    line = next(li for li in text.splitlines() if li.startswith("accuracy_score"))
    assert "min_absolute_change=0" in line and line.rstrip().endswith("pass")
    assert "<table" in result._repr_html_() and "accuracy_score" in result._repr_html_()
    assert set(result.to_dict()["metrics"]["accuracy_score"]) == {
        "baseline",
        "candidate",
        "change",
        "threshold",
        "passed",
    }


def test_a_worse_candidate_fails_and_says_why(ws, saved, data, name):
    strong, weak = _register(ws, name, saved, "strong", "weak")
    _champion(ws, name, strong)
    _, _, test = data
    thresholds = {"accuracy_score": {"min_absolute_change": 0.0}, "log_loss": {"min_relative_change": 0.05}}
    result = ws.models.evaluate(f"{name}:{weak}", test, thresholds=thresholds, evaluator_config=FAST)
    assert not result.passed
    assert result.metrics["accuracy_score"].passed is False and result.metrics["log_loss"].passed is False
    assert any("accuracy_score minimum absolute change check failed" in f for f in result.failures)
    assert any("log_loss minimum relative change check failed" in f for f in result.failures)
    assert ws.client.get_model_version(name, str(weak)).tags["mlops.gate.passed"] == "false"
    assert "FAILED" in str(result) and "FAIL" in str(result).splitlines()[2]


def test_without_a_baseline_only_absolute_thresholds_apply(ws, saved, data, name):
    (weak,) = _register(ws, name, saved, "weak")
    _, _, test = data
    # no version holds the alias: the change rules are skipped, not failed
    result = ws.models.evaluate(f"{name}:{weak}", test, evaluator_config=FAST)
    assert result.passed and result.baseline is None and result.baseline_alias == "champion"
    assert result.metrics["accuracy_score"].baseline is None and result.metrics["accuracy_score"].change is None
    assert "no baseline" in str(result).splitlines()[0]
    # baseline=None, with a threshold the weak tree does not reach; inside a job, the run is the job's child
    strict = {"accuracy_score": {"threshold": 0.99, "min_absolute_change": 0.5}}
    with ws.job(experiment="gates", autolog=False) as job:
        failed = ws.models.evaluate(f"{name}:{weak}", test, baseline=None, thresholds=strict, evaluator_config=FAST)
    assert not failed.passed and len(failed.failures) == 1 and "value threshold check failed" in failed.failures[0]
    tags = ws.client.get_run(failed.run_id).data.tags
    assert tags["mlops.gate.baseline"] == "none" and tags["mlflow.parentRunId"] == job.run_id


def test_a_notebooks_own_mlflow_experiment_does_not_get_in_the_way(ws, saved, data, name, monkeypatch):
    import mlflow.tracking.fluent

    (weak,) = _register(ws, name, saved, "weak")
    elsewhere = ws.experiment_id("someone-elses")
    monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", elsewhere)  # mlflow.set_experiment(...)
    result = ws.models.evaluate(f"{name}:{weak}", data[2], baseline=None, evaluator_config=FAST)
    assert ws.client.get_run(result.run_id).info.experiment_id == ws.experiment_id("model-evaluations")
    assert mlflow.tracking.fluent._active_experiment_id == elsewhere


def test_a_regressor_is_judged_on_its_own_metrics(ws, saved, name):
    ridge, linear = _register(ws, name, saved, "ridge", "linear")
    _champion(ws, name, ridge)
    result = ws.models.evaluate(f"{name}:{linear}", saved["regression_test"], evaluator_config=FAST)
    assert result.model_type == "regressor" and result.passed
    rmse = result.metrics["root_mean_squared_error"]
    assert rmse.candidate < rmse.baseline and rmse.threshold["greater_is_better"] is False
    worse = ws.models.evaluate(
        f"{name}:{ridge}", saved["regression_test"], baseline=f"{name}:{linear}", evaluator_config=FAST
    )
    assert not worse.passed and worse.baseline == f"{name}:{linear}" and worse.baseline_alias is None


def test_bad_data_and_unknown_metrics_are_refused_naming_the_columns_and_metrics(ws, saved, data, name):
    weak, strong = _register(ws, name, saved, "weak", "strong")
    _champion(ws, name, weak)
    _, _, test = data
    candidate = f"{name}:{strong}"
    runs_before = len(ws.client.search_runs([ws.experiment_id("model-evaluations")], max_results=1000))
    with pytest.raises(InvalidInput, match="no target column 'churned'; its columns: tenure, spend, calls, age, label"):
        ws.models.evaluate(candidate, test, targets="churned")
    with pytest.raises(InvalidInput, match="columns the model does not take: extra") as extra:
        ws.models.evaluate(candidate, test.assign(extra=1.0))
    assert extra.value.data["extra"] == ["extra"] and "tenure, spend, calls, age" in extra.value.message
    with pytest.raises(InvalidInput, match="lacks spend"):
        ws.models.evaluate(candidate, test.drop(columns=["spend"]))
    with pytest.raises(InvalidInput, match="no rows"):
        ws.models.evaluate(candidate, test.iloc[:0])
    with pytest.raises(InvalidInput, match=r"produces no 'accuracy'\. It produces: accuracy_score, recall_score"):
        ws.models.evaluate(candidate, test, thresholds={"accuracy": {"threshold": 0.5, "greater_is_better": True}})
    with pytest.raises(InvalidInput, match="is its own baseline"):
        ws.models.evaluate(f"{name}:{weak}", test)
    with pytest.raises(NotFound):
        ws.models.evaluate(candidate, test, baseline=f"{name}:99")
    # none of these started an evaluation run
    assert len(ws.client.search_runs([ws.experiment_id("model-evaluations")], max_results=1000)) == runs_before
    # a metric the classifier evaluator knows but this (binary) evaluation does not produce: named after the run
    with pytest.raises(InvalidInput, match=r"produces no 'f1_score_micro'\. It produces: .*accuracy_score") as late:
        ws.models.evaluate(candidate, test, thresholds={"f1_score_micro": {"threshold": 0.5}}, evaluator_config=FAST)
    assert "roc_auc" in late.value.data["produced"]
    failed = ws.client.search_runs([ws.experiment_id("model-evaluations")], "attributes.status = 'FAILED'")
    assert failed and "f1_score_micro" in failed[0].data.tags["mlops.error"]


def test_threshold_rules_are_mlflows(monkeypatch):
    """The comparison gives MLflow's verdict and MLflow's words wherever MLflow accepts the threshold."""
    from mlflow.models import MetricThreshold
    from mlflow.models.evaluation.validation import ModelValidationFailedException, _validate

    rng = random.Random(7)
    for _ in range(400):
        greater = rng.random() < 0.5
        options = {"greater_is_better": greater}
        if rng.random() < 0.6:
            options["threshold"] = round(rng.uniform(0, 1), 2)
        if rng.random() < 0.6:
            options["min_absolute_change"] = round(rng.uniform(0.001, 0.2), 3)
        if rng.random() < 0.6 or len(options) == 1:
            options["min_relative_change"] = round(rng.uniform(0.0, 0.5), 2)
        candidate, baseline = round(rng.uniform(-1, 1), 3), rng.choice([0.0, round(rng.uniform(-1, 1), 3)])
        rule = parse_thresholds({"m": options})["m"]
        ours = check(rule, candidate, baseline, has_baseline=True)
        try:
            _validate({"m": MetricThreshold(**options)}, {"m": candidate}, {"m": baseline})
            theirs = None
        except ModelValidationFailedException as exc:
            theirs = exc.message
        assert ours.passed == (theirs is None), (options, candidate, baseline)
        if theirs is not None:
            assert " ".join(ours.failures) == theirs
    # MetricThreshold objects are taken as they are; the CLI's form parses to the same rule
    assert (
        parse_thresholds({"f1_score": MetricThreshold(threshold=0.8, greater_is_better=True)})["f1_score"].threshold
        == 0.8
    )
    assert parse_threshold_option("log_loss:min_relative_change=0.1,greater_is_better=false") == (
        "log_loss",
        {"min_relative_change": 0.1, "greater_is_better": False},
    )
    with pytest.raises(InvalidInput, match="greater_is_better"):
        parse_thresholds({"custom_metric": {"threshold": 1.0}})
    with pytest.raises(InvalidInput, match="between 0 and 1"):
        parse_thresholds({"f1_score": {"min_relative_change": 2.0}})


# -- approvals and the policy ------------------------------------------------------------------------------------
def test_the_approval_flow_records_who_when_and_why_in_the_event_log(ws, saved, name, monkeypatch):
    (version,) = _register(ws, name, saved, "weak")
    assert ws.models.approval(name, version).status is None
    with pytest.raises(Conflict, match="nobody asked"):
        ws.models.approve(name, version)
    monkeypatch.setenv("MLOPS_USER", "alice")
    pending = ws.models.request_approval(name, version, reason="beats the champion on May data")
    assert pending.status == "PendingApproval" and pending.requested_by == "alice"
    with pytest.raises(Conflict, match="already PendingApproval"):
        ws.models.request_approval(name, version)
    monkeypatch.setenv("MLOPS_USER", "bob")
    rejected = ws.models.reject(name, version, comment="calibration is off")
    assert rejected.status == "Rejected" and rejected.decided_by == "bob" and rejected.comment == "calibration is off"
    with pytest.raises(Conflict, match=r"rejected by bob\. Request a new approval"):
        ws.models.approve(name, version)
    monkeypatch.setenv("MLOPS_USER", "alice")
    again = ws.models.request_approval(name, version, reason="recalibrated")
    assert again.status == "PendingApproval" and again.decided_by is None and again.comment is None
    monkeypatch.setenv("MLOPS_USER", "carol")
    approved = ws.models.approve(name, version, comment="fine now")
    assert approved.status == "Approved" and approved.decided_by == "carol" and approved.requested_by == "alice"
    assert ws.models.approval(name, version) == approved
    subject = f"models/{name}/versions/{version}"
    events = [e for e in ws.events.tail(limit=500) if e.subject == subject and e.type != "model.registered"]
    assert [
        (e.type, e.data.get("requestedBy"), e.data.get("approvedBy") or e.data.get("rejectedBy")) for e in events
    ] == [
        ("model.approval_requested", "alice", None),
        ("model.rejected", "alice", "bob"),
        ("model.approval_requested", "alice", None),
        ("model.approved", "alice", "carol"),
    ]
    assert (
        events[0].data["reason"] == "beats the champion on May data"
        and events[1].data["comment"] == "calibration is off"
    )
    assert all(e.time is not None for e in events)


def test_the_policy_protects_champion_and_production_by_default_and_can_change(ws, monkeypatch):
    default = {p.alias: p for p in ws.release.policy()}
    assert {"champion", "production"} <= set(default)
    assert default["champion"].requires == ["gate", "approval"] and default["champion"].four_eyes is False
    monkeypatch.setenv("MLOPS_USER", "admin")
    changed = {p.alias: p for p in ws.release.set_policy(protect=["staging"], require=["approval"])}
    assert changed["staging"].requires == ["approval"] and changed["staging"].updated_by == "admin"
    changed = {p.alias: p for p in ws.release.set_policy(protect=["staging"], four_eyes=True)}
    assert (
        changed["staging"].four_eyes
        and changed["staging"].requires == ["approval"]
        and not changed["champion"].four_eyes
    )
    assert "staging" not in {p.alias for p in ws.release.set_policy(unprotect=["staging"])}
    with pytest.raises(NotFound, match="not protected"):
        ws.release.set_policy(unprotect=["staging"])
    with pytest.raises(InvalidInput, match="Unknown requirement"):
        ws.release.set_policy(protect=["x"], require=["tests"])
    with pytest.raises(InvalidInput, match="reads as a version"):
        ws.release.set_policy(protect=["3"])
    last = ws.events.tail(types=["policy.changed"])[-1]
    assert last.data["changedBy"] == "admin" and last.data["unprotected"] == ["staging"]


# -- promotion ---------------------------------------------------------------------------------------------------
def test_promotion_is_refused_naming_what_is_missing_and_a_rollback_promotes_the_previous_version(
    ws, saved, data, name, monkeypatch
):
    weak, strong, worse = _register(ws, name, saved, "weak", "strong", "weak")
    _champion(ws, name, weak)
    _, _, test = data
    # no gate run and no approval
    with pytest.raises(PromotionRefused, match=r"it has no gate run.*it is not approved \(nobody asked") as refused:
        ws.models.promote(name, strong, reason="May retrain")
    assert refused.value.missing == ["no_gate_run", "not_approved"] and refused.value.http_status == 409
    # a passed gate, approval pending
    ws.models.evaluate(f"{name}:{strong}", test, evaluator_config=FAST)
    ws.models.request_approval(name, strong, reason="ready")
    with pytest.raises(PromotionRefused, match=r"not approved \(PendingApproval, asked by tester\)") as refused:
        ws.models.promote(name, strong)
    assert refused.value.missing == ["not_approved"]
    # a hand-set approval tag is not an approval: the log has no event behind it
    ws.models.set_tags(name, strong, {"mlops.approval.status": "Approved"})
    with pytest.raises(PromotionRefused, match=r"no model\.approved event"):
        ws.models.promote(name, strong)
    ws.models.set_tags(name, strong, {"mlops.approval.status": "PendingApproval"})
    # self-approval under four-eyes: refused when approving, and at promotion if four-eyes came on later
    ws.models.approve(name, strong, comment="mine")  # four-eyes is off: allowed
    ws.release.set_policy(protect=["champion"], four_eyes=True)
    try:
        with pytest.raises(PromotionRefused, match="four-eyes is on for champion and tester both asked") as refused:
            ws.models.promote(name, strong)
        assert refused.value.missing == ["four_eyes"]
        ws.models.reject(name, strong, comment="needs a second pair of eyes")
        ws.models.request_approval(name, strong, reason="again")
        with pytest.raises(Conflict, match=r"four-eyes is on for champion\. Someone else"):
            ws.models.approve(name, strong)
        monkeypatch.setenv("MLOPS_USER", "bob")
        ws.models.approve(name, strong)
        monkeypatch.setenv("MLOPS_USER", "tester")
        promotion = ws.models.promote(name, strong, reason="May retrain")
    finally:
        ws.release.set_policy(protect=["champion"], four_eyes=False)
    assert promotion.moved and promotion.previous_version == weak and promotion.approved_by == "bob"
    assert ws.models.get(name, "champion").version == strong
    # a failed gate is named with its run
    failed = ws.models.evaluate(f"{name}:{worse}", test, evaluator_config=FAST)
    _approved(ws, name, worse, monkeypatch)
    with pytest.raises(PromotionRefused, match=f"its gate failed \\(run {failed.run_id}: Metric accuracy_score"):
        ws.models.promote(name, worse)
    # the champion cannot be rejected while it holds the alias
    with pytest.raises(Conflict, match=r"holds the protected alias\(es\) champion"):
        ws.models.reject(name, strong)
    # rolling back is promoting the previous version (which needs what any version needs)
    with pytest.raises(PromotionRefused):
        ws.models.promote(name, weak, reason="rollback")
    ws.models.evaluate(f"{name}:{weak}", test, baseline=None, evaluator_config=FAST)
    _approved(ws, name, weak, monkeypatch)
    back = ws.models.promote(name, weak, reason="rollback: complaints")
    assert back.previous_version == strong and ws.models.get(name, "champion").version == weak
    assert ws.models.promote(name, weak).moved is False  # already there: nothing moves, nothing is logged
    # an unprotected alias moves freely; the history has every move with who and why
    ws.models.promote(name, worse, alias="challenger")
    moves = ws.models.history(name, "champion")
    assert [(m.previous_version, m.version, m.via, m.by, m.reason) for m in moves] == [
        (None, weak, "alias", None, None),
        (weak, strong, "promote", "tester", "May retrain"),
        (strong, weak, "promote", "tester", "rollback: complaints"),
    ]
    assert [m.alias for m in ws.models.history(name)] == ["champion", "champion", "champion", "challenger"]
    promoted = [e for e in ws.events.tail(types=["model.promoted"]) if e.subject == f"models/{name}/aliases/champion"]
    assert promoted[-1].data["previousVersion"] == str(strong) and promoted[-1].data["promotedBy"] == "tester"
    assert promoted[-1].data["reason"] == "rollback: complaints" and promoted[-1].data["gateRunId"]


RACER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from jupyter_mlops import Conflict, Workspace
    root, role, name, versions, go = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(","), Path(sys.argv[5])
    ws = Workspace(root, metadata_uri=f"sqlite:///{root}/mlops.db")
    ws.models.get(name, versions[0]), ws.release.policy()  # stores open before the start
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.01)
    for version in versions:
        try:
            if role == "reject":
                ws.models.reject(name, version, comment="race")
            else:
                ws.models.promote(name, version, alias="race", reason=role)
        except Conflict:
            pass
    """
)


def _race(root: Path, tmp_path: Path, name: str, roles: dict[str, list[int]]) -> None:
    script, go = tmp_path / "racer.py", tmp_path / "go"
    script.write_text(RACER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(root), role.split("-")[0], name, ",".join(map(str, versions)), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "MLOPS_USER": role},
        )
        for role, versions in roles.items()
    ]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    go.touch()
    errors = [proc.communicate(timeout=120)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * len(procs), errors


def test_two_processes_racing_never_leave_the_alias_on_a_rejected_version(ws, root, saved, name, tmp_path, monkeypatch):
    versions = _register(ws, name, saved, *["weak"] * 8)
    ws.release.set_policy(protect=["race"], require=["approval"])
    for version in versions:
        _approved(ws, name, version, monkeypatch)
    _race(root, tmp_path, name, {"promote": versions, "reject": versions})
    # read back from the log, in the order the guarded changes happened
    events = [e for e in ws.events.tail(limit=10_000) if e.subject.startswith(f"models/{name}/")]
    state: dict[int, str] = {}
    holder = None
    for event in events:
        version = event.data.get("modelVersion")
        if event.type in ("model.approved", "model.rejected"):
            if event.type == "model.rejected":
                assert int(version) != holder, "a version was rejected while it held the protected alias"
            state[int(version)] = event.type
        elif event.type == "model.promoted":
            assert state[int(version)] == "model.approved", "the alias moved to a version that was not approved"
            holder = int(version)
    current = ws.models.get_model(name).aliases.get("race")
    assert current is None or ws.models.approval(name, current).status == "Approved"
    assert holder == current


def test_two_processes_promoting_at_once_keep_one_chain_of_moves(ws, root, saved, name, tmp_path, monkeypatch):
    versions = _register(ws, name, saved, *["weak"] * 6)
    ws.release.set_policy(protect=["race"], require=["approval"])
    for version in versions:
        _approved(ws, name, version, monkeypatch)
    _race(root, tmp_path, name, {"alice": versions * 2, "bob": list(reversed(versions)) * 2})
    moves = ws.models.history(name, "race")
    assert moves and {m.by for m in moves} <= {"alice", "bob"}
    for before, after in itertools.pairwise(moves):
        assert after.previous_version == before.version, "two promotions read the same previous version"
    assert moves[-1].version == ws.models.get_model(name).aliases["race"]


# -- the CLI -----------------------------------------------------------------------------------------------------
def mlops(root: Path, *args: str, user: str = "cli-user") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "jupyter"), "mlops", *args, "--workspace", str(root)],
        capture_output=True,
        text=True,
        env={**os.environ, "MLOPS_USER": user, "MLOPS_METADATA_URI": f"sqlite:///{root}/mlops.db"},
    )


def test_the_cli_gates_approves_promotes_and_shows_the_history(ws, root, saved, data, name, tmp_path):
    weak, strong = _register(ws, name, saved, "weak", "strong")
    _champion(ws, name, weak)
    _, _, test = data
    csv = tmp_path / "test.csv"
    test.to_csv(csv, index=False)
    # a failing gate exits non-zero and prints the table
    gated = mlops(
        root, "models", "evaluate", f"{name}:{weak}", "--data", str(csv), "--baseline", "none",
        "--threshold", "accuracy_score:threshold=0.99", "--evaluator-config", "log_model_explainability=false",
    )  # fmt: skip
    assert gated.returncode == 1, gated.stderr
    assert "FAILED" in gated.stdout and "BASELINE" in gated.stdout and "accuracy_score" in gated.stdout
    # a passing one exits 0 (MLflow's default evaluator, SHAP plots when asked for); --json is the record
    passed = mlops(
        root, "models", "evaluate", f"{name}:{strong}", "--data", str(csv), "--json", "--target", "label",
        "--threshold", "accuracy_score:min_absolute_change=0", "--threshold", "f1_score:threshold=0.5",
        "--evaluator-config", "log_model_explainability=true",
    )  # fmt: skip
    assert passed.returncode == 0, passed.stderr
    verdict = json.loads(passed.stdout)
    assert verdict["passed"] is True and verdict["baseline"] == f"{name}:{weak}"
    assert verdict["metrics"]["f1_score"]["threshold"] == {"threshold": 0.5, "greater_is_better": True}
    artifacts = {a.path for a in ws.client.list_artifacts(verdict["run_id"])}
    assert {"verdict.json", "candidate_shap_summary_plot.png", "baseline_roc_curve_plot.png"} <= artifacts
    bad = mlops(root, "models", "evaluate", f"{name}:{strong}", "--data", str(csv), "--threshold", "accuracy")
    assert bad.returncode == 1 and "METRIC:OPTION=VALUE" in bad.stderr
    # a refused promotion exits non-zero naming what is missing
    refused = mlops(root, "models", "promote", name, str(strong), "--reason", "May")
    assert refused.returncode == 1 and "it is not approved" in refused.stderr
    assert mlops(root, "models", "request-approval", name, str(strong), "--reason", "ready").returncode == 0
    approved = mlops(root, "models", "approve", name, str(strong), "--comment", "ok", "--json", user="reviewer")
    assert json.loads(approved.stdout)["status"] == "Approved"
    promoted = mlops(root, "models", "promote", name, str(strong), "--alias", "champion", "--reason", "May", "--json")
    assert promoted.returncode == 0, promoted.stderr
    assert json.loads(promoted.stdout)["previous_version"] == weak
    history = json.loads(mlops(root, "models", "history", name, "--alias", "champion", "--json").stdout)
    assert [(h["version"], h["by"], h["reason"]) for h in history] == [(weak, None, None), (strong, "cli-user", "May")]
    assert "May" in mlops(root, "models", "history", name).stdout


def test_the_cli_shows_and_sets_the_policy(root, ws):
    shown = mlops(root, "policy", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    assert {"champion", "production"} <= {p["alias"] for p in json.loads(shown.stdout)}
    set_ = mlops(root, "policy", "set", "--protect", "qa", "--require", "gate", "--four-eyes", "--json")
    assert set_.returncode == 0, set_.stderr
    qa = next(p for p in json.loads(set_.stdout) if p["alias"] == "qa")
    assert qa["requires"] == ["gate"] and qa["four_eyes"] is True and qa["updated_by"] == "cli-user"
    assert mlops(root, "policy", "set", "--protect", "qa", "--no-four-eyes").returncode == 0
    assert "qa" in mlops(root, "policy", "show").stdout
    assert mlops(root, "policy", "set", "--unprotect", "qa").returncode == 0
    nothing = mlops(root, "policy", "set")
    assert nothing.returncode == 1 and "Nothing to change" in nothing.stderr
