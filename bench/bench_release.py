"""Release gate benchmark: ``mlops.evaluate`` of a candidate against the champion against doing it by hand with
MLflow (``mlflow.models.evaluate`` of each version, then ``mlflow.validate_evaluation_results``).

Run with ``.venv/bin/python bench/bench_release.py [--rows N] [--repeats N]`` (default 100,000 rows of 8 float
features). The champion is a logistic regression, the candidate a depth-8 decision tree, both registered in a fresh
workspace; both contenders use MLflow's default evaluator with its defaults (metrics, plots and SHAP explanations)
and the same thresholds (accuracy at least 0.6 and 0.01 above the champion's). ``mlops.evaluate`` also checks the
data against the models, records one run with both versions' metrics and the verdict, and tags the candidate; by
hand there are two runs and nothing is recorded about the verdict. After one untimed round of each (imports,
caches), each figure is the best of ``--repeats`` interleaved runs. Target: ``mlops.evaluate`` within 1.2x of the
hand-written gate.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
logging.getLogger("mlflow").setLevel(logging.ERROR)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jupyter_mlops as mlops  # noqa: E402
from jupyter_mlops.release.evaluate import DEFAULT_EVALUATOR_CONFIG  # noqa: E402

FEATURES = 8
TARGET = 1.2  # mlops.evaluate takes at most this many times as long as the hand-written gate
THRESHOLDS = {"accuracy_score": {"threshold": 0.6, "min_absolute_change": 0.01}}


def main() -> int:
    import mlflow
    import pandas as pd
    from mlflow.models import MetricThreshold
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="evaluation rows (default 100,000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each contender, the best counts (default 3)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # MLflow's and SHAP's advice is not what is measured
    logging.getLogger("mlflow").setLevel(logging.ERROR)  # after the import: MLflow sets its own level then

    columns = [f"f{i}" for i in range(FEATURES)]
    X, y = make_classification(n_samples=args.rows + 5000, n_features=FEATURES, n_informative=5, random_state=0)
    frame = pd.DataFrame(X, columns=columns)
    train, test = frame[:5000], frame[5000:].assign(label=y[5000:])

    with tempfile.TemporaryDirectory(prefix="mlops-bench-release-") as tmp:
        ws = mlops.Workspace(Path(tmp) / "ws")
        champion = ws.models.register(LogisticRegression().fit(train, y[:5000]), "churn")
        candidate = ws.models.register(
            DecisionTreeClassifier(max_depth=8, random_state=0).fit(train, y[:5000]), "churn"
        )
        ws.models.set_alias("churn", "champion", champion.version)
        mlflow.set_tracking_uri(ws.tracking_uri)
        mlflow.set_experiment("by-hand")
        validation = {m: MetricThreshold(**o, greater_is_better=True) for m, o in THRESHOLDS.items()}

        def by_hand() -> bool:
            results = [
                mlflow.models.evaluate(
                    v.uri,
                    test,
                    targets="label",
                    model_type="classifier",
                    evaluators="default",
                    evaluator_config=DEFAULT_EVALUATOR_CONFIG,  # the same work as the gate does
                )
                for v in (candidate, champion)
            ]
            try:
                mlflow.validate_evaluation_results(validation, results[0], results[1])
            except mlflow.exceptions.MlflowException:
                return False
            return True

        def ours() -> bool:
            gate = mlops.evaluate(f"churn:{candidate.version}", test, thresholds=THRESHOLDS, workspace=ws)
            return gate.passed

        best = {"mlops.evaluate": math.inf, "by hand (2x mlflow.models.evaluate + validate)": math.inf}
        verdicts = {label: contender() for label, contender in zip(best, (ours, by_hand), strict=True)}  # warm-up
        for _ in range(args.repeats):  # interleaved, best of each: others' load on the machine comes and goes
            for label, contender in zip(best, (ours, by_hand), strict=True):
                started = time.perf_counter()
                verdicts[label] = contender()
                best[label] = min(best[label], time.perf_counter() - started)

    ours_s, hand_s = best.values()
    ratio = ours_s / hand_s
    print(f"release gate on {args.rows:,} rows x {FEATURES} features (best of {args.repeats})")
    for label, seconds in best.items():
        print(f"  {label:<50} {seconds:7.2f} s   verdict: {'passed' if verdicts[label] else 'failed'}")
    ok = ratio <= TARGET and verdicts["mlops.evaluate"] == verdicts[list(best)[1]]
    print(f"  mlops.evaluate / by hand: {ratio:.2f}x   (target <= {TARGET}x)   {'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
