"""Events benchmark: emission cost on the registration hot path, and signed webhook delivery throughput.

Run with ``.venv/bin/python bench/bench_events.py``. Figures, each beside its reference and target:

1. ``events.emit`` on a workspace with one subscription (median), and ``models.register`` from a file with
   event emission on vs off (the difference is what events add to the hot path). Target: under 5 ms added.
2. Delivery of N events, signed (Standard Webhooks) CloudEvents, to a local receiver in another process.
   Target: at least 500 events/s.
"""

from __future__ import annotations

import logging
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
logging.getLogger("mlflow").setLevel(logging.ERROR)

from jupyter_mlops import Workspace  # noqa: E402

RECEIVER = textwrap.dedent(
    """
    import sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    count = 0
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_POST(self):
            global count
            self.rfile.read(int(self.headers["Content-Length"]))
            count += 1
            self.send_response(204); self.send_header("Content-Length", "0"); self.end_headers()
        def do_GET(self):
            body = str(count).encode()
            self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a): pass
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
    """
)


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def emission(root: Path) -> tuple[float, float, float]:
    ws = Workspace(root / "emit")
    ws.events.subscribe("sink", webhook="http://127.0.0.1:9/never", types=["model.registered"])
    ws.events.deliverer.wake = lambda: None  # measure the write only: nothing is sent in this part
    f = root / "m.bin"
    f.write_bytes(b"x" * 1000)
    for _ in range(5):
        ws.models.register(f, "warm")
    emits = []
    for i in range(200):
        t = time.perf_counter()
        ws.events.emit("model.registered", f"models/x/versions/{i}", {"modelName": "x", "modelVersion": str(i)})
        emits.append(time.perf_counter() - t)
    with_events, without = [], []
    real_emit = ws.events.emit
    for i in range(60):
        use = i % 2 == 0
        ws.events.emit = real_emit if use else (lambda *a, **k: None)  # type: ignore[method-assign]
        t = time.perf_counter()
        ws.models.register(f, "bench")
        (with_events if use else without).append(time.perf_counter() - t)
    ws.events.emit = real_emit  # type: ignore[method-assign]
    return median_ms(emits), median_ms(with_events), median_ms(without)


def throughput(root: Path, n: int) -> tuple[float, int]:
    from tests.services import free_port

    port = free_port()
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
        ws = Workspace(root / "deliver")
        ws.events.subscribe("bench", webhook=f"http://127.0.0.1:{port}/hook")
        ws.events.deliverer.wake = lambda: None  # log everything first, then time delivery alone
        for i in range(n):
            ws.events.emit("model.registered", f"models/x/versions/{i}", {"modelName": "x", "modelVersion": str(i)})
        t = time.perf_counter()
        left = ws.events.deliver()
        elapsed = time.perf_counter() - t
        received = int(urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read())
        assert left == 0 and received == n, (left, received)
        return n / elapsed, received
    finally:
        receiver.kill()


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    with tempfile.TemporaryDirectory(prefix="mlops-bench-events-") as tmp:
        root = Path(tmp)
        emit_ms, with_ms, without_ms = emission(root)
        rate, received = throughput(root, 2000)
    added = with_ms - without_ms
    rows = [
        ("events.emit (1 subscription)", f"{emit_ms:.2f} ms", "-", "-", "(info)", True),
        (
            "register with events vs without",
            f"{with_ms:.1f} ms",
            f"{without_ms:.1f} ms (events off)",
            f"+{added:.2f} ms",
            "< +5 ms",
            added < 5,
        ),
        ("signed webhook delivery", f"{rate:.0f} events/s", f"{received} received", "-", ">= 500/s", rate >= 500),
    ]
    print(f"{'figure':34} | {'ours':12} | {'reference':22} | {'added':9} | {'target':9} | OK?")
    print("-" * 100)
    for name, ours, ref, delta, target, ok in rows:
        print(f"{name:34} | {ours:12} | {ref:22} | {delta:9} | {target:9} | {'yes' if ok else 'NO'}")


if __name__ == "__main__":
    main()
