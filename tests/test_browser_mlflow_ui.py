"""What a user sees in ``mlflow ui`` after a baseline and a MaskSup run (opt-in: ``pytest -m browser``).

Starts ``mlflow ui`` on loopback over the store of two tiny bundle runs and drives headless Chromium
(selenium + the system ``chromium`` / ``chromedriver``, e.g. ``apt-get install chromium chromium-driver``
and ``pip install -e .[browser]``); skips with the reason when either is missing. Set
``MEDSEG_SCREENSHOT_DIR`` to keep a screenshot of each page (how docs/mlflow.md's pictures are made).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import mlflow
import pytest

from medseg_masksup.tracking.run_handler import training_view_url
from medseg_masksup.tracking.store import sqlite_uri
from server_fixtures import free_port, loopback_server
from test_bundle_training import run_bundle

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e .[browser])")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("no chromium/chromedriver on PATH (apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """Two tiny runs (MaskSup, baseline) in one store and ``mlflow ui`` serving it on loopback."""
    out = tmp_path_factory.mktemp("ui")
    run_bundle(out)
    run_bundle(out, "--method", "baseline")
    uri = sqlite_uri(str(out / "mlflow.db"))
    port = free_port()
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "-h", "127.0.0.1", "-p", str(port)]
    with loopback_server(cmd, port, "/health", out / "ui.log") as base:
        client = mlflow.MlflowClient(uri)
        experiment = client.get_experiment_by_name("masksup-synthetic-glands")
        runs = {r.info.run_name: r.info.run_id for r in client.search_runs([experiment.experiment_id])}
        yield base, experiment.experiment_id, runs


def _open(driver, url: str, expect: list[str], name: str, timeout: float = 60.0) -> str:
    """Load ``url`` and wait until the page shows every text in ``expect``; returns the page text."""
    driver.get(url)
    deadline = time.time() + timeout
    text = ""
    while time.time() < deadline:
        text = driver.find_element("tag name", "body").text
        if all(e in text for e in expect):
            break
        time.sleep(0.5)
    folder = os.environ.get("MEDSEG_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"mlflow-{name}.png"))
    missing = [e for e in expect if e not in text]
    assert not missing, f"{url}: page lacks {missing}; it shows: {text[:1500]}"
    return text


def test_experiment_opens_on_the_training_runs_with_datasets_and_models(ui, browser):
    base, experiment_id, runs = ui
    link = training_view_url(experiment_id, base)
    _open(browser, link, ["masksup", "baseline", "synthetic-glands-training", "backbone"], "runs")
    assert "/runs" in browser.current_url and "workflowType=machine_learning" in browser.current_url
    assert "Traces" not in browser.find_element("tag name", "body").text.split("Runs")[0]  # no GenAI side bar first


def test_run_page_lists_logged_model_and_datasets(ui, browser):
    base, experiment_id, runs = ui
    url = f"{base}/#/experiments/{experiment_id}/runs/{runs['masksup']}?workflowType=machine_learning"
    text = _open(browser, url, ["Logged models", "backbone", "val_dice"], "run")
    assert "Logged models (1)" in text


def test_models_tab_shows_both_logged_models(ui, browser):
    base, experiment_id, _ = ui
    text = _open(browser, f"{base}/#/experiments/{experiment_id}/models?workflowType=machine_learning",
                 ["backbone", "masksup", "baseline"], "models")
    assert text.count("Ready") >= 2


def test_compare_view_shows_the_learning_curves_side_by_side(ui, browser):
    base, experiment_id, runs = ui
    ids = ",".join(f'"{runs[name]}"' for name in ("masksup", "baseline"))
    _open(browser, f'{base}/#/compare-runs?runs=[{ids}]&experiments=["{experiment_id}"]', ["Artifacts"], "compare-table")
    entries = browser.find_elements("xpath", "//*[text()='learning_curves.png']")
    assert entries, "learning_curves.png is not among the common artifacts"
    browser.execute_script("arguments[0].scrollIntoView(); arguments[0].click();", entries[0])
    deadline = time.time() + 60
    shown = []
    while time.time() < deadline and len(shown) < 2:
        shown = [img for img in browser.find_elements("tag name", "img")
                 if (img.get_attribute("src") or "").startswith("blob:") and img.size["height"] > 50]
        time.sleep(0.5)
    folder = os.environ.get("MEDSEG_SCREENSHOT_DIR")
    if folder:
        browser.save_screenshot(str(Path(folder) / "mlflow-compare-figures.png"))
    assert len(shown) >= 2, "the two runs' learning curves are not shown side by side"
