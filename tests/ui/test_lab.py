"""The MLOps sidebar in a real JupyterLab, in headless Chromium (screenshots in tests/ui/screenshots/)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_mlops import Workspace
from tests.ui.conftest import SCREENSHOTS

SIDEBAR_TAB = '.jp-SideBar [data-id="jp-mlops-sidebar"]'


@pytest.fixture
def ws(lab) -> Workspace:
    return Workspace(lab.workspace)


def open_sidebar(page):
    page.click(SIDEBAR_TAB)
    page.wait_for_selector("#jp-mlops-sidebar", state="visible")
    return page.locator("#jp-mlops-sidebar")


def test_sidebar_opens_with_its_sections(page):
    sidebar = open_sidebar(page)
    for title in ("Jobs", "Models", "Events"):
        assert sidebar.get_by_text(title, exact=True).first.is_visible()
    page.wait_for_selector("#jp-mlops-events .jp-mlops-dot-on", timeout=60_000)  # the event stream is connected
    page.screenshot(path=SCREENSHOTS / "sidebar.png")


def test_registered_model_appears_and_filters_by_tag(page, ws, tmp_path):
    # Given two models registered by the test, with different tags
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"weights")
    ws.models.register(weights, "churn", tags={"stage": "prod", "team": "risk"})
    ws.models.register(weights, "churn", tags={"stage": "dev"})
    ws.models.register(weights, "fraud", tags={"stage": "dev"})
    ws.models.set_alias("churn", "champion", 1)
    sidebar = open_sidebar(page)
    models = sidebar.locator("#jp-mlops-models")
    models.get_by_title("Refresh").click()
    # Then they show, with their tags and alias
    models.locator(".jp-mlops-group-name", has_text="fraud").wait_for()
    assert models.locator(".jp-mlops-group-name").all_inner_texts() == ["churn", "fraud"]
    assert "@champion" in models.locator(".jp-mlops-version").first.inner_text()
    page.screenshot(path=SCREENSHOTS / "models.png")
    # When filtering by tag
    models.get_by_label("Filter model versions").fill("stage=prod")
    models.get_by_label("Filter model versions").press("Enter")
    # Then only the matching version is left
    models.get_by_text("1 version of 1 model matching stage=prod").wait_for()
    assert models.locator(".jp-mlops-version").count() == 1
    assert "team=risk" in models.locator(".jp-mlops-version").first.inner_text()
    page.screenshot(path=SCREENSHOTS / "models-filtered.png")
    # And a filter that does not parse is explained inline
    models.get_by_label("Filter model versions").fill("stage=prod,,")
    models.get_by_label("Filter model versions").press("Enter")
    error = models.locator(".jp-mlops-filter-error")
    error.wait_for()
    assert "TagName=TagValue" in error.inner_text()
    page.screenshot(path=SCREENSHOTS / "models-filter-error.png")


def test_delete_in_use_is_refused_with_a_clear_message(page, ws, tmp_path):
    from jupyter_mlops.store.schema import Deployment

    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"weights")
    ws.models.register(weights, "scorer")
    with ws.store.session() as session:
        session.add(Deployment(endpoint="scoring", name="blue", model_name="scorer", model_version=1))
    models = open_sidebar(page).locator("#jp-mlops-models")
    models.get_by_label("Filter model versions").fill("name=scorer")
    models.get_by_label("Filter model versions").press("Enter")
    models.get_by_title("Delete scorer:1").click()
    page.locator(".jp-Dialog").get_by_role("button", name="Delete").click()
    message = models.locator(".jp-mlops-message-error")
    message.wait_for()
    assert "scoring/blue" in message.inner_text()
    page.screenshot(path=SCREENSHOTS / "models-delete-refused.png")


def test_failed_run_notifies_and_shows_in_jobs(page, ws):
    sidebar = open_sidebar(page)
    page.wait_for_selector("#jp-mlops-events .jp-mlops-dot-on", timeout=60_000)
    # Given a successful run, When a run fails
    with ws.job(experiment="churn", name="train-ok", autolog=False) as job:
        ws.client.log_metric(job.run_id, "auc", 0.912)
    with pytest.raises(RuntimeError), ws.job(experiment="nightly", name="nightly-train", autolog=False):
        raise RuntimeError("out of memory")
    # Then a JupyterLab notification says so, and the Jobs panel and the Events feed show it
    toast = page.locator(".Toastify__toast", has_text="nightly-train")
    toast.wait_for(timeout=20_000)
    assert re.search(r"Run nightly-train failed", toast.inner_text())
    jobs = sidebar.locator("#jp-mlops-jobs")
    jobs.locator('.jp-mlops-run[data-status="FAILED"]', has_text="nightly-train").wait_for()
    assert "auc 0.912" in jobs.locator(".jp-mlops-run", has_text="train-ok").inner_text()
    sidebar.locator('#jp-mlops-events [data-type="run.failed"]').wait_for()
    page.wait_for_timeout(800)  # the toast's slide-in
    page.screenshot(path=SCREENSHOTS / "jobs-failed-notification.png")
    # The Jobs panel filters by experiment
    jobs.get_by_label("Experiment").select_option("churn")
    jobs.locator(".jp-mlops-run", has_text="nightly-train").wait_for(state="detached")
    assert jobs.locator(".jp-mlops-run").count() == 1


def test_register_a_version_from_a_run(page, ws, tmp_path):
    # Given a finished run that logged model files under "model"
    (tmp_path / "model.bin").write_bytes(b"weights")
    with ws.job(experiment="churn", name="train-for-registry", autolog=False) as job:
        ws.client.log_artifact(job.run_id, str(tmp_path / "model.bin"), "model")
    sidebar = open_sidebar(page)
    page.evaluate("window.jupyterapp.commands.execute('jupyter-mlops:refresh')")
    run = sidebar.locator("#jp-mlops-jobs .jp-mlops-run", has_text="train-for-registry")
    # When the user registers it from the Jobs panel
    run.get_by_role("button", name="register").click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator("input").fill("from-ui")
    dialog.get_by_role("button", name="Ok").click()
    # Then the version exists, the Jobs panel says so, and the Models panel shows it (through the event stream)
    sidebar.locator("#jp-mlops-jobs .jp-mlops-message-info", has_text="Registered from-ui:1").wait_for()
    sidebar.locator("#jp-mlops-models .jp-mlops-group-name", has_text="from-ui").wait_for()
    assert ws.models.get("from-ui", 1).run_id == job.run_id
    page.screenshot(path=SCREENSHOTS / "jobs-register.png")


def _cli(lab, *args: str) -> None:
    """Run ``jupyter mlops ...`` as a separate process on the Lab's workspace (another face, another process)."""
    env = {**os.environ, "MLOPS_WORKSPACE": str(lab.workspace)}
    command = [str(Path(sys.executable).with_name("jupyter")), "mlops", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr


def test_changes_from_another_process_reach_the_open_panels(page, lab, tmp_path):
    # Given the Models panel and the Events feed open and connected (a fresh workspace creates its stores first)
    sidebar = open_sidebar(page)
    page.wait_for_selector("#jp-mlops-events .jp-mlops-dot-on", timeout=60_000)
    models, events = sidebar.locator("#jp-mlops-models"), sidebar.locator("#jp-mlops-events")
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"weights")
    # When another process registers a version (nobody presses Refresh)
    _cli(lab, "models", "register", "from-cli", str(weights), "--tag", "stage=dev")
    # Then the panel shows it and the feed names it
    models.locator(".jp-mlops-group-name", has_text="from-cli").wait_for(timeout=30_000)
    events.locator('[data-type="model.registered"]', has_text="from-cli:1").wait_for(timeout=30_000)
    # When it moves an alias, the version shows the alias
    _cli(lab, "models", "alias", "from-cli", "cli-pick", "1")  # an alias no other test of this Lab uses
    models.locator(".jp-mlops-version", has_text="@cli-pick").wait_for(timeout=30_000)
    events.locator('[data-type="model.alias_changed"]', has_text="@cli-pick → from-cli:1").wait_for(timeout=30_000)
    page.screenshot(path=SCREENSHOTS / "models-live-from-cli.png")
    # When it deletes the model, the panel drops it
    _cli(lab, "models", "delete", "from-cli", "--force")
    models.locator(".jp-mlops-group-name", has_text="from-cli").wait_for(state="detached", timeout=30_000)
    events.locator('[data-type="model.deleted"]', has_text="from-cli:1").wait_for(timeout=30_000)


def test_dark_theme(page, ws, tmp_path):
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"weights")
    ws.models.register(weights, "dark-model", tags={"stage": "dev"})
    sidebar = open_sidebar(page)
    page.evaluate("window.jupyterapp.commands.execute('jupyter-mlops:refresh')")
    sidebar.locator(".jp-mlops-run").first.wait_for()
    sidebar.locator(".jp-mlops-version").first.wait_for()
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
    page.wait_for_selector("body[data-jp-theme-light='false']", state="attached", timeout=20_000)
    page.wait_for_timeout(500)
    page.screenshot(path=SCREENSHOTS / "sidebar-dark.png")
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})")


def test_screenshots_folder_is_gitignored():
    ignored = (Path(__file__).parents[2] / ".gitignore").read_text()
    assert "tests/ui/screenshots/" in ignored
