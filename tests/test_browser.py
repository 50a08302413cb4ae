"""JupyterLab in a real browser: start a Lab server, open notebook 06 (a copy, so autosave never touches the tree)
under the smoke profile in Debian's Chromium through Selenium, run every cell, check that the explorer renders and
that a new selection changes its output, save a screenshot under ``test-artifacts/browser/`` (or
``$WORKBENCH_TEST_ARTIFACTS``), and shut the server down.

Skips, saying why, only where no browser can be driven (no ``chromium`` and ``chromedriver`` on the PATH, or no
``selenium``): ``make browser`` installs them (``.ci/run`` does)."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "06_explorer.ipynb"
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(condition, timeout: float, what: str, poll: float = 0.5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server over a folder holding a copy of notebook 06; yields (url, token, log path)."""
    # CI sets WORKBENCH_REQUIRE_BROWSER once `make browser` has installed one: then a missing piece is a failure,
    # so that a green CI run means the browser test ran
    missing = pytest.fail if os.environ.get("WORKBENCH_REQUIRE_BROWSER") else pytest.skip
    if BROWSER is None or DRIVER is None:
        missing("no Chromium and chromedriver on the PATH (`make browser` installs Debian's)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing("selenium is not installed (`pip install -e .[dev]`)")
    shutil.copy(NOTEBOOK, tmp_path / NOTEBOOK.name)
    port, token = _free_port(), "wb-" + os.urandom(8).hex()
    env = {**os.environ, "WORKBENCH_PROFILE": "smoke", "JUPYTER_CONFIG_DIR": str(tmp_path / ".jupyter-config"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / ".jupyter-runtime")}
    settings = tmp_path / ".lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    log = tmp_path / "lab.log"
    with open(log, "w") as fh:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}", "--expose-app-in-browser",
             f"--LabApp.user_settings_dir={tmp_path / '.lab-settings'}",
             f"--LabApp.workspaces_dir={tmp_path / '.workspaces'}",
             "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
             *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],  # CI containers
            stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                return json.load(r)
        except OSError:
            return None
    try:
        _wait_for(lambda: up() or (server.poll() is not None and pytest.fail(log.read_text())), 60,
                  "the JupyterLab server")
        yield url, token, log
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def _artifacts() -> Path:
    folder = Path(os.environ.get("WORKBENCH_TEST_ARTIFACTS", REPO / "test-artifacts")) / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _explorer_text(driver, tab: int) -> str:
    """The text of one explorer tab's output area (0 item, 1 code, 2 user)."""
    return driver.execute_script(
        "const panels = document.querySelectorAll('.wb-explorer .widget-tab-contents > .widget-box,"
        " .wb-explorer .lm-TabPanel-stackedPanel > .widget-box');"
        "return panels.length > arguments[0] ? panels[arguments[0]].innerText : '';", tab)


def test_notebook_06_explorer_in_chromium(lab):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, token, log = lab
    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1400,1800"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        driver.get(f"{url}/lab/tree/{NOTEBOOK.name}?token={token}")
        _wait_for(lambda: driver.execute_script(
            "const app = window.jupyterapp; const w = app && app.shell.currentWidget;"
            "return !!(w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel"
            " && w.sessionContext.session.kernel.status === 'idle');"), 90, "the notebook's kernel to start")
        driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells');")
        # every code cell has run when the notebook's cells all carry an execution count and the kernel is idle
        done = ("const w = window.jupyterapp.shell.currentWidget; const cells = w.content.widgets"
                ".filter(c => c.model.type === 'code');"
                "return w.sessionContext.session.kernel.status === 'idle' &&"
                " cells.every(c => c.model.executionCount !== null);")
        _wait_for(lambda: driver.execute_script(done), 150, "every cell to run")
        errors = driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output[data-mime-type*='error']")
        assert not errors, errors[0].text[:2000]
        explorer = _wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".wb-explorer"), 30,
                             "the explorer widget to render")[0]
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", explorer)
        before = _wait_for(lambda: _explorer_text(driver, 0), 30, "the item tab's output")
        assert "codes" in before and "nearest by embedding" in before
        query = explorer.find_element(By.CSS_SELECTOR, "input[placeholder='id or part of a title']")
        query.send_keys(Keys.CONTROL, "a")
        query.send_keys("lamp", Keys.ENTER)
        after = _wait_for(lambda: (t := _explorer_text(driver, 0)) != before and "lamp" in t.lower() and t, 30,
                          "the item tab to follow the new selection")
        assert "lamp" in after.lower() and "<Figure size" not in after        # images, not their text form
        images = _wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".wb-explorer img"), 30, "item images")
        assert all(driver.execute_script("return arguments[0].naturalWidth", img) > 50 for img in images)
        query.send_keys(Keys.CONTROL, "a")
        query.send_keys("no such title at all", Keys.ENTER)
        _wait_for(lambda: "has 'no such title at all' in its title" in _explorer_text(driver, 0), 30,
                  "the explorer's message for a search without a match")
        query.send_keys(Keys.CONTROL, "a")
        query.send_keys("lamp", Keys.ENTER)
        _wait_for(lambda: "lamp" in _explorer_text(driver, 0).lower() and driver.execute_script(
            "return window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'"), 30,
            "the item tab again")
        time.sleep(1)  # the last images decode
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", explorer)
        shot = _artifacts() / "explorer.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        tabs = explorer.find_elements(By.CSS_SELECTOR, ".lm-TabBar-tab")
        for index, expected, name in ((1, "cold", "explorer-code.png"), (2, "generator's beam", "explorer-user.png")):
            tabs[index].click()                                   # the other two views render too
            _wait_for(lambda: expected in _explorer_text(driver, index), 30, f"tab {index} to show {expected!r}")
            time.sleep(1)
            driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", explorer)
            assert driver.save_screenshot(str(_artifacts() / name))
    finally:
        driver.quit()
