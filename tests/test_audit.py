"""The audit of a model from the real event log, registry, runs and the requests a real endpoint collected."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import numpy as np

from jupyter_mlops import Workspace
from jupyter_mlops.audit import audit, to_csv
from tests.waiting import eventually


def test_who_why_where_deployed_and_how_used(local_workspace: Workspace, tmp_path):
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    ws = local_workspace
    X = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    proto = to_onnx(LogisticRegression().fit(X, (X[:, 0] > 0).astype(int)), X[:1], options={"zipmap": False})
    with ws.job(experiment="audit", autolog=False) as job:
        ws.models.register(proto, "audited", description="first try")
    ws.models.register(proto, "audited", description="retrained on May data")
    ws.models.register(proto, "audited", description="to be dropped")
    ws.models.delete("audited", 3)
    ws.models.archive("audited", 1)
    ep = ws.endpoints.create("audit-ep", auth="none")
    try:
        ep.deploy("blue", "audited:2")
        ep.set_traffic({"blue": 100})
        for _ in range(3):
            ep.invoke({"inputs": X[:1].tolist()})
        # the collector writes in batches
        eventually(lambda: next(a for a in audit(ws, "audited") if a.version == 2).requests == 3)
        entries = {a.version: a for a in audit(ws, "audited")}
    finally:
        ep.delete()
    assert sorted(entries) == [1, 2, 3]
    first, second, dropped = entries[1], entries[2], entries[3]
    assert first.registered_by == "tester" and first.description == "first try" and first.run_id == job.run_id
    assert first.archived and not first.deleted and first.requests == 0
    assert second.description == "retrained on May data"
    [deployment] = second.deployments
    assert deployment["endpoint"] == "audit-ep" and deployment["deployment"] == "blue"
    assert deployment["traffic"][0]["percent"] == 100
    assert second.requests == 3 and second.last_used is not None
    assert dropped.deleted and dropped.deleted_at and dropped.description == "to be dropped"
    rows = list(csv.DictReader(io.StringIO(to_csv(list(entries.values())))))
    assert [r["version"] for r in rows] == ["1", "2", "3"]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter_mlops.cli",
            "audit",
            "--model",
            "audited",
            "--workspace",
            str(ws.root),
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert [e["version"] for e in json.loads(out.stdout)] == [1, 2, 3]
