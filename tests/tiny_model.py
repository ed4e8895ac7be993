"""The smallest real model an endpoint can serve: an ONNX logistic regression of two features, two classes."""

from __future__ import annotations

from pathlib import Path

ROWS = [[0.0, 1.0], [1.0, 0.0]]  # scored as [0, 1]


def onnx_classifier(path: Path) -> Path:
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    X = np.array(ROWS, dtype=np.float32)
    path.write_bytes(to_onnx(LogisticRegression().fit(X, [0, 1]), X[:1], options={"zipmap": False}).SerializeToString())
    return path
