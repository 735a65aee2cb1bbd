"""The operator console in a real browser: headless Chromium (Debian ``chromium`` +
``chromium-driver``) driven by Selenium against a real ``imagematch serve`` on 127.0.0.1, over the
sample catalog with the offline default model, behind an access token.

The server and the browser are fixtures of ``tests/e2e/conftest.py`` (shared with
``test_console_triage.py``). Screenshots (1280 px and 390 px wide) go to ``tests/artifacts/``; with
``IMAGEMATCH_UPDATE_SCREENSHOT=1`` the try page's is also written to ``docs/console.png``.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO
from tests.e2e.conftest import CHROMEDRIVER, CHROMIUM, QUERY, TOKEN, Server, _wait, shoot, sign_in

if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip(
        "Chromium not installed (apt-get install chromium chromium-driver): browser tests skipped",
        allow_module_level=True,
    )
pytest.importorskip("selenium.webdriver", reason="selenium not installed")
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = pytest.mark.slow


def test_a_wrong_token_is_refused_and_the_right_one_signs_in(driver: WebDriver, server: Server) -> None:
    driver.delete_all_cookies()  # the browser is shared by the session: start signed out
    assert httpx.get(f"{server.base}/v1/stats").status_code == 401
    assert httpx.get(f"{server.base}/ui/jobs", follow_redirects=False).status_code == 303
    sign_in(driver, server, "not-the-token-at-all-000000")
    # The refusal is a new page load: wait for it (bounded) rather than read the old page.
    alerts = _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "[role=alert]"))
    assert "/ui/login" in driver.current_url
    assert "not valid" in alerts[0].text  # type: ignore[index]
    shoot(driver, "login")
    sign_in(driver, server, TOKEN)
    _wait(
        driver,
        lambda d: (
            d.find_elements(By.CSS_SELECTOR, "h1") and d.find_element(By.CSS_SELECTOR, "h1").text == "Jobs"
        ),
    )
    assert TOKEN not in driver.page_source


def _results(driver: WebDriver) -> list[object]:
    return driver.find_elements(By.CSS_SELECTOR, "#results li.match")


def test_a_photo_on_the_try_page_shows_the_top5_with_pictures(console: WebDriver, server: Server) -> None:
    console.get(f"{server.base}/ui/try")
    console.find_element(By.ID, "try-file").send_keys(str(QUERY))
    _wait(console, lambda d: len(_results(d)) == 5)
    names = [e.text for e in console.find_elements(By.CSS_SELECTOR, "#results .match-name")]
    assert "Golden Delicious" in names[:2]

    def thumbnails_loaded(driver: WebDriver) -> list[object]:
        return driver.execute_script(  # type: ignore[no-any-return]
            "return Array.from(document.querySelectorAll('#results img.thumb'))"
            ".map(i => i.complete && i.naturalWidth)"
        )

    # The photo and five reference images (pictures load after the list: wait for them, bounded).
    _wait(console, lambda d: len(loaded := thumbnails_loaded(d)) == 6 and all(loaded))
    shoot(console, "try")
    if os.environ.get("IMAGEMATCH_UPDATE_SCREENSHOT"):
        console.set_window_size(1280, 760)
        console.save_screenshot(str(REPO / "docs" / "console.png"))
        console.set_window_size(1280, 900)


def _row(driver: WebDriver, job_id: int) -> dict[str, str]:
    """The row's status and error, read in one script (the page replaces rows as it polls)."""
    found: dict[str, str] = driver.execute_script(
        "const r = document.getElementById(arguments[0]);"
        "return r ? {status: r.querySelector('.badge').textContent.trim().toLowerCase(),"
        "            error: (r.querySelector('.error-summary') || {textContent: ''}).textContent.trim()}"
        "       : {status: '', error: ''};",
        f"job-{job_id}",
    )
    return found


def test_a_broken_file_fails_with_its_reason_and_retry_runs_it_again(
    console: WebDriver, server: Server, tmp_path: Path
) -> None:
    for photo in sorted(QUERY.parent.glob("*.jpg"))[:4]:  # some answered photos around it
        server.api.post("/v1/images", files={"file": (photo.name, photo.read_bytes(), "image/jpeg")})
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"this is not a photo at all")
    console.get(f"{server.base}/ui/try")
    console.find_element(By.ID, "try-file").send_keys(str(broken))
    _wait(console, lambda d: d.find_elements(By.CSS_SELECTOR, "#results [role=alert]"))
    console.find_element(By.CSS_SELECTOR, "button[formaction='/ui/try/submit']").click()
    _wait(console, lambda d: "highlight=" in d.current_url)
    job_id = int(console.current_url.rsplit("=", 1)[1])
    _wait(console, lambda d: _row(d, job_id)["status"] == "failed")  # the row refreshes by itself
    assert "not a decodable image" in _row(console, job_id)["error"]
    before = server.api.get(f"/v1/jobs/{job_id}").json()
    shoot(console, "jobs")
    # A permanent failure: no plain Retry in the row, only behind the job page's warning.
    assert not console.find_elements(By.CSS_SELECTOR, f"#job-{job_id} .actions button")
    console.find_element(By.CSS_SELECTOR, f"#job-{job_id} .actions a").click()
    _wait(console, lambda d: d.find_elements(By.CSS_SELECTOR, "details.retry-anyway"))
    console.find_element(By.CSS_SELECTOR, "details.retry-anyway summary").click()
    assert "fail again" in console.find_element(By.CSS_SELECTOR, "details.retry-anyway .alert").text
    console.find_element(By.CSS_SELECTOR, "details.retry-anyway button").click()
    _wait(
        console, lambda d: server.api.get(f"/v1/jobs/{job_id}").json()["updated_at"] != before["updated_at"]
    )
    _wait(console, lambda d: server.api.get(f"/v1/jobs/{job_id}").json()["status"] == "failed")
    console.get(f"{server.base}/ui/jobs/{job_id}")
    assert "not a decodable image" in console.find_element(By.CSS_SELECTOR, ".error-text").text
    shoot(console, "job")


def test_health_shows_the_figures_of_v1_stats(console: WebDriver, server: Server) -> None:
    stats = server.api.get("/v1/stats").json()
    console.get(f"{server.base}/ui/health")

    def shown(key: str) -> str:
        return str(console.find_element(By.CSS_SELECTOR, f"[data-stat='{key}']").text)

    for status, count in stats["jobs"].items():
        assert shown(f"jobs.{status}").startswith(str(count))
    assert shown("pending_catalog_jobs").startswith(str(stats["pending_catalog_jobs"]))
    for key in ("version", "products", "vectors", "embedder"):
        assert shown(f"index.{key}") == str(stats["index"][key])
    built = console.find_element(By.CSS_SELECTOR, "[data-stat='index.built_at'] time")
    assert shown("index.built_at").endswith("ago") and built.get_attribute("datetime")  # ISO in the tooltip
    assert console.find_elements(By.CSS_SELECTOR, "svg.chart rect.bar-ok")
    shoot(console, "health")
    console.get(f"{server.base}/ui/catalog/GS-000")
    shoot(console, "product")


def test_the_try_page_works_from_the_keyboard_and_labels_its_fields(
    console: WebDriver, server: Server, photos: str
) -> None:
    console.get(f"{server.base}/ui/try")
    fields = console.find_elements(By.CSS_SELECTOR, "#try-form input:not([type=hidden]), #try-form select")
    assert len(fields) == 3
    for field in fields:
        ident = field.get_attribute("id")
        assert console.find_elements(By.CSS_SELECTOR, f"label[for='{ident}']"), f"{ident} has no label"
    keys = ActionChains(console)
    for _ in range(20):  # Tab from the top of the page to the URL field
        if console.switch_to.active_element.get_attribute("id") == "try-url":
            break
        keys.send_keys(Keys.TAB).perform()
    else:
        pytest.fail("the URL field cannot be reached with Tab")
    keys.send_keys(f"{photos}/{QUERY.name}", Keys.TAB).perform()
    assert console.switch_to.active_element.get_attribute("id") == "try-category"
    keys.send_keys(Keys.TAB).perform()
    assert console.switch_to.active_element.text == "Find products"
    keys.send_keys(Keys.ENTER).perform()
    _wait(console, lambda d: len(_results(d)) == 5)
    assert "Golden Delicious" in console.find_element(By.CSS_SELECTOR, "#results").text
