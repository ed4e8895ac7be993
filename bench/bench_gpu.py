"""GPU benchmark: onnxruntime's CUDA execution provider against its CPU provider, for a forest and an MLP.

Run with ``.venv/bin/python bench/bench_gpu.py [--rows 1000] [--repeats 50]``. Needs a CUDA device and
``onnxruntime-gpu`` installed in place of ``onnxruntime`` (see the README's "Deployment resources"); without
either it says which is missing and exits 0 ("skipped: ..."). For each model it times a batch of ``--rows`` rows
and a single row on each provider (median of ``--repeats`` runs after a warm-up): the batch shows what the GPU
buys, the single row its transfer overhead (host to device and back for one row).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jupyter_mlops.deploy import resources

FEATURES = 32


def models() -> dict[str, bytes]:
    """A random forest and an MLP on the same synthetic data, converted to ONNX."""
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, FEATURES)).astype(np.float32)
    y = (X[:, :4].sum(axis=1) > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=100, max_depth=12, random_state=0).fit(X, y)
    mlp = MLPClassifier(hidden_layer_sizes=(512, 512, 256), max_iter=30, random_state=0).fit(X, y)
    return {
        name: to_onnx(model, X[:1], options={"zipmap": False}).SerializeToString()
        for name, model in (("forest", forest), ("mlp", mlp))
    }


def timed(session: Any, batch: Any, repeats: int) -> float:
    """Median milliseconds of one run over ``batch``."""
    name = session.get_inputs()[0].name
    output = session.get_outputs()[0].name
    for _ in range(5):
        session.run([output], {name: batch})
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        session.run([output], {name: batch})
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args(argv)
    support = resources.detect()
    missing = []
    if support.devices == 0:
        missing.append("no CUDA device on this machine (no NVIDIA driver device in /dev or /proc/driver/nvidia)")
    if not support.cuda_provider:
        missing.append(f"{support.onnxruntime} has no CUDAExecutionProvider (install onnxruntime-gpu in its place)")
    if missing:
        print(f"bench_gpu skipped: {'; '.join(missing)}.")
        return 0
    import numpy as np
    import onnxruntime as ort

    batch = np.random.default_rng(1).normal(size=(args.rows, FEATURES)).astype(np.float32)
    print(f"{'model':8} {'provider':22} {f'{args.rows} rows (ms)':>16} {'1 row (ms)':>11}")
    for name, onnx in models().items():
        for provider in (resources.CUDA, resources.CPU):
            providers = [provider, resources.CPU] if provider == resources.CUDA else [provider]
            session = ort.InferenceSession(onnx, providers=providers)
            if session.get_providers()[0] != provider:
                print(f"{name:8} {provider:22} onnxruntime fell back to {session.get_providers()[0]}: not timed")
                continue
            print(
                f"{name:8} {provider:22} {timed(session, batch, args.repeats):16.2f} "
                f"{timed(session, batch[:1], args.repeats):11.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
