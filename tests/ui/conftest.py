"""A real JupyterLab (subprocess, private Jupyter folders) and Debian's chromium driven by Playwright."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).parent / "screenshots"


@dataclass
class Lab:
    url: str
    token: str
    workspace: Path
    process: subprocess.Popen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(tmp: Path, *extra: str, workspace: Path | None = None) -> Lab:
    """Start ``jupyter lab`` with fresh config/data/runtime/workspaces folders; wait until it answers."""
    token, port = secrets.token_hex(16), free_port()
    for name in ("config", "data", "runtime", "lab-workspaces", "root"):
        (tmp / name).mkdir(parents=True, exist_ok=True)
    # no "get notified about Jupyter news?" prompt over the screenshots
    notification = tmp / "user-settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True, exist_ok=True)
    notification.write_text('{"fetchNews": "false"}')
    workspace = workspace or tmp / "mlops-workspace"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "MLFLOW_TRACKING"))},
        "JUPYTER_CONFIG_DIR": str(tmp / "config"),
        "JUPYTER_DATA_DIR": str(tmp / "data"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        "MLOPS_WORKSPACE": str(workspace),
    }
    command = [
        str(Path(sys.executable).with_name("jupyter")),
        "lab",
        "--no-browser",
        "--allow-root",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={tmp / 'root'}",
        f"--LabApp.workspaces_dir={tmp / 'lab-workspaces'}",
        f"--LabApp.user_settings_dir={tmp / 'user-settings'}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--FileContentsManager.delete_to_trash=False",
        *extra,
    ]
    log = open(tmp / "lab.log", "wb")  # noqa: SIM115 (closed with the process)
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited: {(tmp / 'lab.log').read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as response:
                if response.status == 200:
                    return Lab(url, token, workspace, process)
        except OSError:
            time.sleep(0.2)
    stop_lab(Lab(url, token, workspace, process))
    raise RuntimeError("jupyter lab did not answer within 60 s")


def stop_lab(lab: Lab) -> None:
    lab.process.terminate()
    try:
        lab.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        lab.process.kill()
        lab.process.wait()


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not (os.path.exists(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"{CHROMIUM} is not installed (scripts/ensure-chromium installs it as root): browser tests skipped")
    if shutil.which("node") is None:
        pytest.skip("node is not installed: Playwright's driver needs it")
    return CHROMIUM


@pytest.fixture(autouse=True)
def jp_asyncio_loop():
    """pytest-jupyter's autouse loop fixture (active once tests/test_handlers.py loads the plugin) closes the
    current event loop after each test, which here is Playwright's running one: not in the browser tests."""
    yield None


@pytest.fixture(autouse=True)
def jp_server_cleanup():
    """No in-process Jupyter server here (the browser tests start their own in a subprocess)."""
    yield


@pytest.fixture(scope="module")
def browser(chromium_path) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def lab(chromium_path, tmp_path_factory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("lab")
    lab = start_lab(tmp, "--MlopsServerApp.run_poll_interval=0.5", "--LabApp.expose_app_in_browser=True")
    yield lab
    stop_lab(lab)


@pytest.fixture
def page(browser, lab):
    SCREENSHOTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{lab.url}/lab?reset&token={lab.token}")
    page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
    yield page
    context.close()
