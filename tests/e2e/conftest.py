"""Fixtures of the console's browser tests (test_console_browser.py, test_console_triage.py): one
real ``imagematch serve`` on 127.0.0.1 over the sample catalog behind a token, and one headless
Chromium, shared by the whole session (the index build is the slow part). Selenium is imported
lazily: the test modules skip themselves when Chromium or Selenium is missing.
"""

from __future__ import annotations

import http.server
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.conftest import CLI, REPO, SAMPLE_CATALOG, SAMPLE_QUERIES, start_server

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
TOKEN = "console-test-token-0123456789abcdef"
ARTIFACTS = REPO / "tests" / "artifacts"
QUERY = SAMPLE_QUERIES.parent / "queries" / "q-00000.jpg"  # a Golden Delicious (GS-000)


def _wait(driver: WebDriver, condition: Callable[[WebDriver], object], timeout: float = 30) -> object:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(
        driver, timeout, poll_frequency=0.2, ignored_exceptions=[StaleElementReferenceException]
    )
    return wait.until(condition)


class Server:
    def __init__(self, base: str, process: subprocess.Popen[bytes]) -> None:
        self.base = base
        self.process = process
        self.api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)


@pytest.fixture(scope="module")
def photos() -> Iterator[str]:
    """The sample query photos over HTTP (for the try page's URL field)."""
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(QUERY.parent))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("console") / "data"
    env = {
        **os.environ,
        "IMAGEMATCH_DATA_DIR": str(data_dir),
        "IMAGEMATCH_API_TOKEN": f"ci:{TOKEN}",
        "IMAGEMATCH_FETCH_ALLOW_PRIVATE": "true",
        "IMAGEMATCH_WORKERS": "1",
        "IMAGEMATCH_MAX_ATTEMPTS": "1",
        "HF_HUB_OFFLINE": "1",
    }
    build = subprocess.run(
        [*CLI, "index", "build", "--catalog", str(SAMPLE_CATALOG)], env=env, capture_output=True, timeout=600
    )
    assert build.returncode == 0, build.stderr[-2000:]
    served = start_server(
        env, ["--host", "127.0.0.1"], log_path=data_dir.parent / "serve.log", wait_seconds=120
    )
    yield Server(served.base_url, served.process)
    served.stop(signal.SIGTERM)


@pytest.fixture(scope="session")
def driver() -> Iterator[WebDriver]:
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    browser = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    yield browser
    browser.quit()


def shoot(driver: WebDriver, name: str) -> None:
    """Full-page screenshots at 1280 px and 390 px wide into tests/artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    for width in (1280, 390):
        driver.set_window_size(width, 900)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, min(max(int(height) + 40, 700), 4000))
        driver.save_screenshot(str(ARTIFACTS / f"{name}-{width}.png"))
    driver.set_window_size(1280, 900)


def sign_in(driver: WebDriver, server: Server, token: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(f"{server.base}/ui/jobs")
    field = driver.find_element(By.ID, "login-token")
    field.clear()
    field.send_keys(token, Keys.ENTER)


@pytest.fixture
def console(driver: WebDriver, server: Server) -> WebDriver:
    """The browser, signed in."""
    driver.get(f"{server.base}/ui/jobs")
    if "/ui/login" in driver.current_url:
        sign_in(driver, server, TOKEN)
        _wait(driver, lambda d: "/ui/jobs" in d.current_url)
    return driver
