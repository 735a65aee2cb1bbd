"""The Zendesk sidebar app in a real browser: headless Chromium (Debian ``chromium`` +
``chromium-driver``) loads the packaged ``iframe.html`` with a test double of the ZAF client
(``zaf_double.js``) whose ``client.request`` goes to a stand-in for Zendesk's proxy. The stand-in
forwards to a real ``imagematch serve`` on 127.0.0.1 (sample catalog, offline default model,
behind a token), inserting the secure token server-side as Zendesk does, and only for the hosts
in the manifest's ``domainWhitelist``.

The screenshot goes to ``tests/artifacts/``; with ``IMAGEMATCH_UPDATE_SCREENSHOT=1`` also to
``docs/zendesk-sidebar.png``.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from imagematch.sources.zendesk.app_package import package_app
from tests.conftest import CLI, REPO, SAMPLE_CATALOG, start_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip(
        "Chromium not installed (apt-get install chromium chromium-driver): browser tests skipped",
        allow_module_level=True,
    )
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.slow
TOKEN = "sidebar-e2e-token-0123456789abcdef"  # a test fixture, not a credential
PLACEHOLDER = "Bearer {{setting.api_token}}"
QUERIES = SAMPLE_CATALOG.parents[1] / "queries"
GOLDEN = QUERIES / "q-00000.jpg"  # a Golden Delicious (GS-000)
SLOW = "q-00022.jpg"  # served only once the test opens the gate: "processing" meanwhile
ARTIFACTS = REPO / "tests" / "artifacts"
DOUBLE = Path(__file__).with_name("zaf_double.js")
AGENT = {"name": "Ada Agent", "email": "ada@example.com"}


def _wait(driver: WebDriver, condition: Callable[[WebDriver], Any], timeout: float = 60) -> Any:
    wait = WebDriverWait(
        driver, timeout, poll_frequency=0.2, ignored_exceptions=[StaleElementReferenceException]
    )
    return wait.until(condition)


def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class PhotoHost:
    """The sample query photos over HTTP; ``/slow/…`` answers only once ``gate`` is set."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        gate = self.gate

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.rsplit("/", 1)[-1]
                if self.path.startswith("/slow/"):
                    gate.wait(timeout=60)
                path = QUERIES / name
                if not path.is_file():
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.end_headers()
                self.wfile.write(path.read_bytes())

            def log_message(self, *args: object) -> None:
                pass

        self.server = _serve(Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"


class ZendeskStandIn:
    """Serves the unpacked app (with the ZAF double as ``zaf_sdk.js``) and plays Zendesk's proxy:
    ``POST /proxy`` takes ``client.request``'s options, inserts the secure setting when the call
    says ``secure: true`` and its host is whitelisted, and forwards the call to imagematch."""

    def __init__(self, app_dir: Path, manifest: dict[str, Any], api_url: str) -> None:
        self.config: dict[str, Any] = {"ticket": "101", "user": AGENT, "settings": {"api_url": api_url}}
        self.forwarded: list[dict[str, Any]] = []
        whitelist = set(manifest["domainWhitelist"])
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = urlsplit(self.path).path.removeprefix("/app/")
                if name == "assets/zaf_sdk.js":
                    body = DOUBLE.read_text().replace("/*CONFIG*/ null", json.dumps(stand_in.config))
                    self._send(200, body.encode(), "text/javascript")
                elif (app_dir / name).is_file() and ".." not in name:
                    kinds = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
                    kind = kinds.get(Path(name).suffix, "application/octet-stream")
                    self._send(200, (app_dir / name).read_bytes(), kind)
                else:
                    self.send_error(404)

            def do_POST(self) -> None:
                options = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                answer = stand_in.forward(options, whitelist)
                self._send(200, json.dumps(answer).encode(), "application/json")

            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = _serve(Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def forward(self, options: dict[str, Any], whitelist: set[str]) -> dict[str, Any]:
        headers = dict(options.get("headers") or {})
        self.forwarded.append({"options": options, "authorization": headers.get("Authorization")})
        if urlsplit(options["url"]).hostname not in whitelist:
            return {"status": 403, "reason": "domain not whitelisted", "body": ""}
        if options.get("secure"):
            headers = {k: v.replace("{{setting.api_token}}", TOKEN) for k, v in headers.items()}
        if options.get("contentType"):
            headers["Content-Type"] = options["contentType"]
        response = httpx.request(
            options.get("type", "GET"),
            options["url"],
            headers=headers,
            content=options.get("data"),
            timeout=30,
        )
        kind = response.headers.get("content-type", "")
        return {
            "status": response.status_code,
            "reason": response.reason_phrase,
            "body": response.text,
            "content_type": kind,
        }


class Served:
    def __init__(self, base: str) -> None:
        self.base = base
        self.api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)

    def submit(self, ticket: str, *, path: Path | None = None, url: str | None = None) -> int:
        entity = {"entity_type": "ticket", "entity_id": ticket}
        if path is not None:
            files = {"file": (path.name, path.read_bytes(), "image/jpeg")}
            response = self.api.post("/v1/images", files=files, data=entity)
        else:
            response = self.api.post("/v1/images", json={"url": url, **entity})
        assert response.status_code == 202, response.text
        return int(response.json()["id"])

    def wait_for(self, job_id: int, *statuses: str) -> dict[str, Any]:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            job: dict[str, Any] = self.api.get(f"/v1/jobs/{job_id}").json()
            if job["status"] in statuses:
                return job
            time.sleep(0.2)
        pytest.fail(f"job {job_id} never reached {statuses}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("sidebar") / "data"
    env = {
        **os.environ,
        "IMAGEMATCH_DATA_DIR": str(data_dir),
        "IMAGEMATCH_API_TOKEN": f"zendesk-app:{TOKEN}",
        "IMAGEMATCH_FETCH_ALLOW_PRIVATE": "true",
        "IMAGEMATCH_WORKERS": "2",
        "IMAGEMATCH_MAX_ATTEMPTS": "1",
        # The slow photo's download waits for the test: long enough never to time out first.
        "IMAGEMATCH_FETCH_TIMEOUT_SECONDS": "300",
        "IMAGEMATCH_FETCH_TOTAL_SECONDS": "300",
        "HF_HUB_OFFLINE": "1",
    }
    build = subprocess.run(
        [*CLI, "index", "build", "--catalog", str(SAMPLE_CATALOG)], env=env, capture_output=True, timeout=600
    )
    assert build.returncode == 0, build.stderr[-2000:]
    server = start_server(
        env, ["--host", "127.0.0.1"], log_path=data_dir.parent / "serve.log", wait_seconds=120
    )
    yield Served(server.base_url)
    server.stop(signal.SIGTERM)


@pytest.fixture(scope="module")
def zendesk_ui(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZendeskStandIn]:
    root = tmp_path_factory.mktemp("app")
    package = package_app(root / "app.zip", api_url=served.base)
    with zipfile.ZipFile(package.path) as archive:
        archive.extractall(root / "unpacked")
        manifest = json.loads(archive.read("manifest.json"))
    stand_in = ZendeskStandIn(root / "unpacked", manifest, served.base)
    yield stand_in
    stand_in.server.shutdown()
    stand_in.server.server_close()


@pytest.fixture(scope="module")
def driver() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=340,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    browser = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    yield browser
    browser.quit()


def _open(driver: WebDriver, zendesk_ui: ZendeskStandIn) -> None:
    driver.get(
        f"{zendesk_ui.base}/app/assets/iframe.html?origin=https%3A%2F%2Fexample.zendesk.com&app_guid=test"
    )


def _card(driver: WebDriver, job_id: int) -> Any:
    return driver.find_element(By.CSS_SELECTOR, f'section.photo[data-job="{job_id}"]')


def _pictures_loaded(driver: WebDriver) -> bool:
    images = driver.find_elements(By.CSS_SELECTOR, "main img")
    return bool(images) and all(
        (img.get_attribute("src") or "").startswith("data:image/jpeg") for img in images
    )


def shoot(driver: WebDriver) -> None:
    """The whole sidebar at 340 px wide (its usual width in the agent workspace)."""
    ARTIFACTS.mkdir(exist_ok=True)
    metrics = {"width": 340, "height": 2000, "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    height = int(driver.execute_script("return document.getElementById('app').scrollHeight")) + 8
    clip = {"x": 0, "y": 0, "width": 340, "height": height, "scale": 1}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "clip": clip})
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    target = ARTIFACTS / "zendesk-sidebar.png"
    target.write_bytes(base64.b64decode(shot["data"]))
    if os.environ.get("IMAGEMATCH_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(target, REPO / "docs" / "zendesk-sidebar.png")


def test_the_sidebar_shows_a_tickets_photos_and_takes_a_confirmation(
    driver: WebDriver, served: Served, zendesk_ui: ZendeskStandIn, photo_host: PhotoHost
) -> None:
    golden = served.submit("101", path=GOLDEN)
    served.wait_for(golden, "complete")
    broken = served.submit("101", url=f"{photo_host.base}/no-such-photo.jpg")
    served.wait_for(broken, "failed")
    slow = served.submit("101", url=f"{photo_host.base}/slow/{SLOW}")
    served.wait_for(slow, "processing")

    _open(driver, zendesk_ui)
    driver.execute_script("window.__sameDocument = true")
    _wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "section.photo")) == 3)
    card = _card(driver, golden)
    names = [e.text for e in card.find_elements(By.CSS_SELECTOR, ".product .name")]
    assert len(names) == 3 and names[0] == "Golden Delicious"
    best = driver.find_elements(By.CSS_SELECTOR, "main > ul.products .name")
    assert best and best[0].text == "Golden Delicious"  # the ticket's combined best products
    failed = _card(driver, broken)
    assert "404" in failed.find_element(By.CSS_SELECTOR, ".error").text
    assert failed.find_element(By.XPATH, ".//button[text()='Retry']")
    assert _card(driver, slow).get_attribute("data-status") == "processing"
    _wait(driver, _pictures_loaded)
    link = driver.find_element(By.CSS_SELECTOR, "footer a")
    assert link.get_attribute("href") == f"{served.base}/ui/entities/ticket/101"

    card.find_element(By.CSS_SELECTOR, 'button[data-product="GS-000"]').click()
    _wait(driver, lambda d: "Ada Agent" in _card(d, golden).find_element(By.CSS_SELECTOR, ".label").text)
    label = served.api.get(f"/v1/jobs/{golden}").json()["label"]
    assert (label["verdict"], label["product_id"]) == ("confirmed", "GS-000")
    assert (label["agent_name"], label["agent_email"]) == (AGENT["name"], AGENT["email"])
    _wait(driver, _pictures_loaded)
    shoot(driver)

    photo_host.gate.set()  # the processing photo completes; the sidebar refreshes by itself
    _wait(driver, lambda d: _card(d, slow).get_attribute("data-status") == "complete")
    assert len(_card(driver, slow).find_elements(By.CSS_SELECTOR, ".product")) == 3
    assert driver.execute_script("return window.__sameDocument") is True  # no reload

    # Other…: the agent searches the catalog and picks the product.
    _card(driver, slow).find_element(By.XPATH, ".//button[text()='Other…']").click()
    _card(driver, slow).find_element(By.CSS_SELECTOR, ".search input").send_keys("Golden")
    pick = ".search button[data-product='GS-000']"
    _wait(driver, lambda d: _card(d, slow).find_elements(By.CSS_SELECTOR, pick))[0].click()
    _wait(driver, lambda d: _card(d, slow).find_elements(By.CSS_SELECTOR, ".label"))
    label = served.api.get(f"/v1/jobs/{slow}").json()["label"]
    assert label["product_id"] == "GS-000" and label["verdict"] in ("confirmed", "corrected")
    invokes = driver.execute_script("return window.__zaf.invokes")
    assert any(call[0] == "resize" for call in invokes)


def test_a_ticket_without_photos_says_so(driver: WebDriver, zendesk_ui: ZendeskStandIn) -> None:
    zendesk_ui.config["ticket"] = "999"
    try:
        _open(driver, zendesk_ui)
        _wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, ".empty").text == "No photos on this ticket")
    finally:
        zendesk_ui.config["ticket"] = "101"


def test_the_token_never_reaches_the_browser(
    driver: WebDriver, served: Served, zendesk_ui: ZendeskStandIn
) -> None:
    _open(driver, zendesk_ui)
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "section.photo"))
    _wait(driver, _pictures_loaded)
    assert TOKEN not in driver.page_source
    assert TOKEN not in driver.execute_script("return document.documentElement.outerHTML")
    # Every call the app made went through client.request, secure, with the placeholder only.
    assert zendesk_ui.forwarded
    for call in zendesk_ui.forwarded:
        assert call["options"]["secure"] is True and call["authorization"] == PLACEHOLDER
    # And the browser itself never sent the token anywhere, nor called imagematch directly.
    sent = [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
    requests = [m["params"]["request"] for m in sent if m["method"] == "Network.requestWillBeSent"]
    assert requests
    for request in requests:
        assert TOKEN not in json.dumps(request)
        assert not request["url"].startswith(served.base)


@pytest.fixture(scope="module")
def photo_host() -> Iterator[PhotoHost]:
    host = PhotoHost()
    yield host
    host.gate.set()
    host.server.shutdown()
    host.server.server_close()
