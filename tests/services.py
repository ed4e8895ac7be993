"""Real services for the shared-store tests: a private PostgreSQL cluster and an `mlflow server` on it.

Both bind to 127.0.0.1 on free ports, live in a temporary folder and are stopped by PID afterwards.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path


class ServiceUnavailable(RuntimeError):
    """A service cannot run on this machine; the message says why (the tests skip with it)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(f"{candidate}/initdb", os.X_OK):
            return Path(candidate)
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise ServiceUnavailable(
        "PostgreSQL is not installed (no initdb found); `make services` installs it on Debian as root."
    )


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the `postgres` user then."""
    if os.geteuid() != 0:
        return cmd
    if shutil.which("runuser") is None:
        raise ServiceUnavailable("running as root and `runuser` is missing: cannot start PostgreSQL as `postgres`")
    return ["runuser", "-u", "postgres", "--", *cmd]


@dataclass
class Postgres:
    folder: Path
    port: int
    bin: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def create_database(self, name: str) -> str:
        subprocess.run(
            _as_postgres([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), name]),
            check=True,
            capture_output=True,
        )
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{name}"

    @classmethod
    def start(cls) -> Postgres:
        pg_bin = _pg_bin()
        folder = Path(tempfile.mkdtemp(prefix="mlops-pg-"))
        folder.chmod(0o777)
        data, sock = folder / "data", folder / "sock"
        sock.mkdir()
        sock.chmod(0o777)
        port = free_port()
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres")
            shutil.chown(sock, "postgres")
        result = subprocess.run(
            _as_postgres([str(pg_bin / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise ServiceUnavailable(f"initdb failed: {result.stderr.strip()[-500:]}")
        options = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
        result = subprocess.run(
            [
                *_as_postgres(
                    [str(pg_bin / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-o", options, "-w"]
                ),
                "start",
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise ServiceUnavailable(f"pg_ctl start failed: {result.stderr.strip()[-500:]}")
        return cls(folder=folder, port=port, bin=pg_bin)

    def stop(self) -> None:
        subprocess.run(
            _as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class MlflowServer:
    process: subprocess.Popen
    url: str
    folder: Path

    @classmethod
    def start(cls, backend_uri: str, timeout: float = 120) -> MlflowServer:
        folder = Path(tempfile.mkdtemp(prefix="mlops-mlflow-server-"))
        port = free_port()
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        log = open(folder / "server.log", "w")  # noqa: SIM115 - kept open for the server's life
        process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "mlflow"),
                "server",
                "--backend-store-uri",
                backend_uri,
                "--artifacts-destination",
                str(folder / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ServiceUnavailable(f"mlflow server exited: {(folder / 'server.log').read_text()[-1500:]}")
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as response:
                    if response.status == 200:
                        return cls(process=process, url=url, folder=folder)
            except OSError:
                time.sleep(0.5)
        process.kill()
        raise ServiceUnavailable(f"mlflow server did not become healthy within {timeout}s")

    def stop(self) -> None:
        import signal

        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGKILL)
        shutil.rmtree(self.folder, ignore_errors=True)
