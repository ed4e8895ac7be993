"""JupyterLab extension benchmark: start-up with and without the extension, and the Models panel over 1,000
versions, each printed next to its target.

1. JupyterLab start-up with the extension against without it (the same server, fresh Jupyter folders; without =
   the labextension disabled in page_config.json and the server extension disabled): time to ``/api/status`` 200,
   and time from opening ``/lab`` in headless Chromium until ``app.restored`` resolves. Target: under 200 ms added.
2. The Models panel over 1,000 versions (10 models x 100): refresh (REST + render of the first page), a tag filter
   (``stage=prod``), and the next page, timed in the browser from the action to the text that shows its result.
   Target: under 300 ms.

Run with ``.venv/bin/python bench/bench_lab.py`` (needs /usr/bin/chromium; ``scripts/ensure-chromium``).
Everything lives in temporary folders removed at the end.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.ui.conftest import CHROMIUM, CHROMIUM_FLAGS, start_lab, stop_lab

STARTS = 4
PANEL_RUNS = 5
MODELS, VERSIONS_PER_MODEL = 10, 100


def lab_start(browser, tmp: Path, *, with_extension: bool) -> tuple[float, float]:
    """(seconds to /api/status 200, seconds from opening /lab to app.restored)."""
    extra = ["--LabApp.expose_app_in_browser=True"]
    config = tmp / "config"
    (config / "labconfig").mkdir(parents=True, exist_ok=True)
    if not with_extension:
        (config / "labconfig" / "page_config.json").write_text(
            json.dumps({"disabledExtensions": {"jupyter-mlops": True}})
        )
        (config / "jupyter_server_config.json").write_text(
            json.dumps({"ServerApp": {"jpserver_extensions": {"jupyter_mlops": False}}})
        )
    t0 = time.perf_counter()
    lab = start_lab(tmp, *extra)
    server = time.perf_counter() - t0
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        t0 = time.perf_counter()
        page.goto(f"{lab.url}/lab?reset&token={lab.token}")
        page.wait_for_function("window.jupyterapp !== undefined", timeout=60_000)
        page.evaluate("window.jupyterapp.restored")
        frontend = time.perf_counter() - t0
        mlops_loaded = page.evaluate("window.jupyterapp.hasPlugin('jupyter-mlops:plugin')")
        assert mlops_loaded == with_extension, (mlops_loaded, with_extension)
        page.close()
    finally:
        stop_lab(lab)
    return server, frontend


def seed_versions(workspace: Path) -> None:
    """10 models x 100 versions straight through MLflow (the registry's own register is benched elsewhere)."""
    from jupyter_mlops import Workspace

    ws = Workspace(workspace)
    client = ws.client
    for m in range(MODELS):
        name = f"model-{m:02d}"
        client.create_registered_model(name)
        for v in range(VERSIONS_PER_MODEL):
            tags = {"stage": "prod" if v % 10 == 0 else "dev", "team": f"team-{m % 3}"}
            client.create_model_version(name, f"file:///tmp/{name}/{v}", tags=tags)


WATCH = """(text) => {
  const panel = document.querySelector('#jp-mlops-models');
  const t = (window.__bench = {});
  const start = () => { if (t.start === undefined) t.start = performance.now(); };
  document.addEventListener('keydown', start, { capture: true, once: true });
  document.addEventListener('click', start, { capture: true, once: true });
  const observer = new MutationObserver(() => {
    if (t.start !== undefined && panel.textContent.includes(text)) {
      t.end = performance.now();
      observer.disconnect();
    }
  });
  observer.observe(panel, { subtree: true, childList: true, characterData: true });
}"""


def timed(page, action, done_text: str) -> float:
    """In-page time from the user's key or click to the DOM showing ``done_text`` (no Playwright overhead)."""
    page.evaluate(WATCH, done_text)
    action()
    page.wait_for_function("window.__bench.end !== undefined", timeout=60_000)
    return page.evaluate("window.__bench.end - window.__bench.start") / 1000


def models_panel(browser, tmp: Path) -> dict[str, list[float]]:
    workspace = tmp / "mlops-workspace"
    seed_versions(workspace)
    lab = start_lab(tmp, "--LabApp.expose_app_in_browser=True", workspace=workspace)
    results: dict[str, list[float]] = {"rest": [], "refresh": [], "filter": [], "next page": []}
    try:
        url = f"{lab.url}/mlops/api/models?token={lab.token}"
        for _ in range(PANEL_RUNS):
            t0 = time.perf_counter()
            with urllib.request.urlopen(url) as response:
                assert len(json.loads(response.read())["versions"]) == MODELS * VERSIONS_PER_MODEL
            results["rest"].append(time.perf_counter() - t0)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{lab.url}/lab?reset&token={lab.token}")
        page.click('.jp-SideBar [data-id="jp-mlops-sidebar"]')
        models = page.locator("#jp-mlops-models")
        models.get_by_text("1000 versions of 10 models").wait_for(timeout=60_000)
        box = models.get_by_label("Filter model versions")
        for _ in range(PANEL_RUNS):
            box.fill("")
            results["refresh"].append(
                timed(page, lambda: box.press("Enter"), "1000 versions of 10 models")
            )  # after a filtered view
            box.fill("stage=prod")
            results["filter"].append(
                timed(page, lambda: box.press("Enter"), "100 versions of 10 models matching stage=prod")
            )
            box.fill("")
            box.press("Enter")
            models.get_by_text("1\u201350 of 1000").wait_for()
            results["next page"].append(
                timed(page, lambda: models.get_by_role("button", name="Next \u203a").click(), "51\u2013100 of 1000")
            )
        page.close()
    finally:
        stop_lab(lab)
    return results


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:7.0f} ms (median of {len(values)})"


def main() -> None:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: run scripts/ensure-chromium")
    tmp = Path(tempfile.mkdtemp(prefix="bench-lab-"))
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
            starts: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
            for i in range(STARTS):
                for with_extension in (False, True) if i % 2 else (True, False):  # alternate: no warm-up bias
                    starts[with_extension].append(
                        lab_start(browser, tmp / f"start-{i}-{with_extension}", with_extension=with_extension)
                    )
            panel = models_panel(browser, tmp / "panel")
            browser.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print("1. JupyterLab start-up                      without extension      with extension        added   target")
    for index, label in ((0, "server /api/status 200"), (1, "browser: open /lab -> restored")):
        without = statistics.median(s[index] for s in starts[False])
        with_ = statistics.median(s[index] for s in starts[True])
        added = (with_ - without) * 1000
        print(
            f"   {label:40s} {without * 1000:8.0f} ms {with_ * 1000:18.0f} ms {added:+10.0f} ms   < 200 ms "
            f"{'OK' if added < 200 else 'OVER'}"
        )
    print(
        f"2. Models panel, {MODELS * VERSIONS_PER_MODEL} versions                                                target"
    )
    print(f"   GET /mlops/api/models (all 1000, JSON)    {ms(panel['rest'])}   (reference: the REST call alone)")
    for key in ("refresh", "filter", "next page"):
        worst = max(panel[key]) * 1000
        verdict = "OK" if statistics.median(panel[key]) < 0.3 else "OVER"
        print(f"   {key:40s}  {ms(panel[key])}   < 300 ms {verdict} (worst {worst:.0f} ms)")


if __name__ == "__main__":
    main()
