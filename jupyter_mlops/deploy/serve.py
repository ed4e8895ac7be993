"""One deployment served on its own: the entrypoint of a container and of a deployment with its own environment.

It serves the same app as an endpoint's router (``app.py``), with a fixed table of one deployment and no store:
``python -m jupyter_mlops.deploy.serve --model-dir DIR [--scoring-script score.py] --port 8080``. It speaks every
protocol an endpoint speaks: ``POST /score``, MLflow's ``POST /invocations`` and ``GET /ping``, and the Open
Inference Protocol v2 with ``--name`` as the model's name (``/v2/models/NAME/infer``), so the packaged image
answers KServe's and Triton's clients as the endpoint does. The key the
router sends comes in the environment (``MLOPS_SERVE_KEY``), never on the command line. In a virtualenv that lacks
the web server packages, ``--extra-path`` names a folder holding them; it goes last on ``sys.path``, so the
environment's own packages win.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from jupyter_mlops.deploy.metrics import MULTIPROCESS_ENV

KEY_ENV = "MLOPS_SERVE_KEY"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jupyter_mlops.deploy.serve", description=__doc__.split("\n\n")[0])
    p.add_argument("--model-dir", required=True, type=Path, help="the model folder (MLflow model or .onnx file)")
    p.add_argument("--scoring-script", type=Path, help="score.py with init() and run(raw_data)")
    p.add_argument("--name", default="default", help="the deployment name in responses and metrics")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--workers", type=int, default=1, help="worker processes sharing the port")
    p.add_argument("--no-onnx", action="store_true", help="serve the MLflow flavour even when an ONNX one exists")
    p.add_argument("--request-timeout-s", type=float, default=60.0)
    p.add_argument("--max-body-bytes", type=int, default=10 * 1024 * 1024)
    p.add_argument(
        "--body-timeout-s",
        type=float,
        help="seconds a request body may take to arrive before a 408 (default: MLOPS_BODY_TIMEOUT_S, else 30)",
    )
    p.add_argument("--extra-path", action="append", default=[], help="a folder appended to sys.path")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    sys.path.extend(args.extra_path)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.workers > 1:  # the others run the same command with one worker each, on the same port
        os.environ.setdefault(MULTIPROCESS_ENV, tempfile.mkdtemp(prefix="mlops-metrics-"))
        single = list(argv if argv is not None else sys.argv[1:])
        for _ in range(args.workers - 1):
            subprocess.Popen([sys.executable, "-m", "jupyter_mlops.deploy.serve", *single, "--workers", "1"])
    from jupyter_mlops.deploy.app import ScoringApp, Served, Table, run
    from jupyter_mlops.deploy.scoring import load_scorer

    scorer = load_scorer(args.model_dir, args.scoring_script, prefer_onnx=not args.no_onnx)
    if args.body_timeout_s is not None and not args.body_timeout_s > 0:
        parser().error("--body-timeout-s must be a positive number of seconds")
    service = ScoringApp(body_timeout_s=args.body_timeout_s)
    service.endpoint = args.name  # v2's model name: /v2/models/NAME/infer (or NAME/NAME)
    served = Served(args.name, str(args.model_dir), scorer, False, args.request_timeout_s, args.max_body_bytes, None)
    service.table = Table(1, {args.name: served}, [(args.name, 100.0)], None, os.environ.get(KEY_ENV) or None)
    gc.freeze()  # the model and the app live as long as the process: keep them out of the collector's scans
    logging.getLogger("jupyter_mlops.serve").info("serving %s on %s:%d", args.model_dir, args.host, args.port)
    run(service.app(), args.host, args.port)


if __name__ == "__main__":
    main()
