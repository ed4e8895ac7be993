"""Drift benchmark: ``mlops.drift`` against evidently's preset with its defaults and a plain numpy/scipy pass.

Run with ``.venv/bin/python bench/bench_drift.py [--rows N]`` (default 100,000 rows x 20 numeric columns; the
reference figures are for ``--rows 1000000``: evidently's defaults about 122 s and 1.6 GB, numpy/scipy about 17 s
and 0.6 GB). Each contender runs in its own process so that peak memory (max RSS) is its own; it includes the
two tables themselves (2 x rows x 20 float64).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

COLUMNS = 20

SETUP = textwrap.dedent(
    """
    import json, resource, sys, time
    import numpy as np, pandas as pd
    rows = int(sys.argv[1])
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(rng.normal(size=(rows, 20)), columns=[f"f{i}" for i in range(20)])
    current = pd.DataFrame(rng.normal(size=(rows, 20)), columns=reference.columns)
    current.iloc[:, :5] += 0.5
    import scipy.stats, evidently.presets, evidently.legacy.calculations.stattests  # imports are not the work
    started = time.perf_counter()
    """
)
FINISH = textwrap.dedent(
    """
    elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": elapsed, "peak_mb": peak_mb, "drifted": drifted}))
    """
)
CONTENDERS = {
    "mlops.drift": "from jupyter_mlops.monitoring.drift import drift\n"
    "result = drift(reference, current)\ndrifted = int(result.features['drifted'].sum())\n",
    "mlops.drift + its HTML report": "from jupyter_mlops.monitoring.drift import drift\n"
    "result = drift(reference, current)\nresult.html()\ndrifted = int(result.features['drifted'].sum())\n",
    "evidently DataDriftPreset (defaults)": "from evidently import Report\n"
    "from evidently.presets import DataDriftPreset\n"
    "snap = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)\n"
    "drifted = int(snap.dict()['metrics'][0]['value']['count'])\n",
    "numpy/scipy KS + Wasserstein + PSI": "from scipy.stats import ks_2samp, wasserstein_distance\n"
    "def psi(a, b):\n"
    "    edges = np.histogram_bin_edges(a, bins=10)\n"
    "    p = np.histogram(a, edges)[0] / len(a) + 1e-6\n"
    "    q = np.histogram(b, edges)[0] / len(b) + 1e-6\n"
    "    return float(np.sum((p - q) * np.log(p / q)))\n"
    "drifted = 0\n"
    "for c in reference:\n"
    "    a, b = reference[c].to_numpy(), current[c].to_numpy()\n"
    "    ks_2samp(a, b); psi(a, b)\n"
    "    drifted += int(wasserstein_distance(a, b) / np.std(a) >= 0.1)\n",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows on each side (default 100,000)")
    rows = parser.parse_args().rows
    results = {}
    for name, body in CONTENDERS.items():
        out = subprocess.run(
            [sys.executable, "-c", SETUP + body + FINISH, str(rows)], capture_output=True, text=True, check=True
        )
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    base = results["numpy/scipy KS + Wasserstein + PSI"]["seconds"]
    print(f"drift over {rows:,} rows x {COLUMNS} numeric columns (5 shifted)")
    print(f"{'contender':38} | {'seconds':>8} | {'peak MB':>8} | {'vs numpy/scipy':>14} | drifted columns")
    for name, r in results.items():
        print(f"{name:38} | {r['seconds']:8.2f} | {r['peak_mb']:8.0f} | {r['seconds'] / base:13.1f}x | {r['drifted']}")
    ours = results["mlops.drift"]
    met = ours["seconds"] <= 2 * base and ours["peak_mb"] < 1024
    print(f"target: mlops.drift within 2x of numpy/scipy and under 1 GB -> {'OK' if met else 'NOT MET'}")
    print("(the HTML report, drawn when displayed, adds a few seconds at any size: it uses a 10,000-row sample)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
