"""The console of issues #23 and #24 in headless Chromium at 1280 px and 390 px: the review queue's
keyboard triage, labelling (This one / Another product… / Undo) on a job page, the search box, the
entity page, bulk retry and the phone layout. The server and browser are the session's
(``tests/e2e/conftest.py``: a real ``imagematch serve`` behind a token, the sample catalog).

With ``IMAGEMATCH_UPDATE_SCREENSHOT=1`` the job page, the review queue and the entity page are
written to ``docs/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.e2e.conftest import CHROMEDRIVER, CHROMIUM, QUERY, Server, _wait, shoot

if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip("Chromium not installed: browser tests skipped", allow_module_level=True)
pytest.importorskip("selenium.webdriver", reason="selenium not installed")
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = pytest.mark.slow
QUERIES = sorted(QUERY.parent.glob("q-*.jpg"))
WIDTHS = (1280, 390)


def _upload(server: Server, photo: Path, entity: str | None = None) -> int:
    fields = dict(zip(("entity_type", "entity_id"), entity.split("/"), strict=True)) if entity else {}
    response = server.api.post(
        "/v1/images", files={"file": (photo.name, photo.read_bytes(), "image/jpeg")}, data=fields
    )
    assert response.status_code in (200, 201, 202), response.text
    return int(response.json()["id"])


def _answered(driver: WebDriver, server: Server, ids: list[int]) -> None:
    for job in ids:
        done = lambda _, job=job: server.api.get(f"/v1/jobs/{job}").json()["status"] == "complete"  # noqa: E731
        _wait(driver, done, 120)


def _label(server: Server, job: int) -> dict[str, object] | None:
    label: dict[str, object] | None = server.api.get(f"/v1/jobs/{job}").json().get("label")
    return label


@pytest.fixture(scope="module")
def ticket(driver: WebDriver, server: Server) -> Iterator[list[int]]:
    """Three photos of ticket/101, answered, plus two of ticket/202."""
    ids = [_upload(server, photo, "ticket/101") for photo in QUERIES[:3]]
    others = [_upload(server, photo, "ticket/202") for photo in QUERIES[3:5]]
    _answered(driver, server, ids + others)
    yield ids


def _save(driver: WebDriver, name: str, width: int = 1280) -> None:
    if os.environ.get("IMAGEMATCH_UPDATE_SCREENSHOT"):
        driver.set_window_size(width, 900)
        driver.execute_script("window.scrollTo(0, 0); document.activeElement.blur()")
        driver.save_screenshot(str(REPO / "docs" / name))
        driver.set_window_size(1280, 900)


def _no_sideways_scroll(driver: WebDriver) -> bool:
    return bool(driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1"))


def test_the_search_box_and_the_entity_page(console: WebDriver, server: Server, ticket: list[int]) -> None:
    for width in WIDTHS:
        console.set_window_size(width, 900)
        console.get(f"{server.base}/ui/jobs")
        box = console.find_element(By.ID, "f-q")
        box.send_keys("ticket/101", Keys.ENTER)
        _wait(console, lambda d: "q=ticket" in d.current_url)
        shown = {
            int(r.get_attribute("data-job")) for r in console.find_elements(By.CSS_SELECTOR, "#job-rows tr")
        }
        assert shown == set(ticket)
        console.find_element(By.CSS_SELECTOR, f"#job-{ticket[0]} a.entity-link").click()
        _wait(console, lambda d: d.current_url.endswith("/ui/entities/ticket/101"))
        photos = console.find_elements(By.CSS_SELECTOR, ".entity-photo")
        assert len(photos) == 3 and "3 photos" in console.find_element(By.CSS_SELECTOR, ".page-head").text
        combined = console.find_elements(By.CSS_SELECTOR, "table.entity-matches tbody tr")
        assert combined and "GS-" in combined[0].text
        assert _no_sideways_scroll(console)
    console.set_window_size(1280, 900)
    shoot(console, "entity")
    _save(console, "console-entity.png")


def test_a_job_page_labels_the_answer_and_undoes_it(
    console: WebDriver, server: Server, ticket: list[int]
) -> None:
    job = ticket[0]
    console.get(f"{server.base}/ui/jobs/{job}")
    console.find_element(By.CSS_SELECTOR, ".match .pick").click()  # "This one" on the top-1
    _wait(console, lambda d: d.find_element(By.CSS_SELECTOR, ".current-label").is_displayed(), 60)
    assert "Confirmed" in console.find_element(By.CSS_SELECTOR, ".current-label").text
    assert (_label(server, job) or {}).get("verdict") == "confirmed"
    console.find_element(By.CSS_SELECTOR, ".current-label .undo").click()
    _wait(console, lambda d: not d.find_element(By.CSS_SELECTOR, ".current-label").is_displayed())
    assert _label(server, job) is None
    # Another product…: search as you type, pick one outside the answer → corrected.
    answer = {e.get_attribute("data-product") for e in console.find_elements(By.CSS_SELECTOR, ".match")}
    console.find_element(By.CSS_SELECTOR, ".labeller .other").click()
    picker = console.find_element(By.CSS_SELECTOR, ".picker-input")
    picker.send_keys("GS-0")
    _wait(console, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".picker-option")) > 1)
    options = console.find_elements(By.CSS_SELECTOR, ".picker-option")
    choice = next(o for o in options if o.get_attribute("data-product") not in answer)
    wanted = choice.get_attribute("data-product")
    choice.click()
    _wait(console, lambda d: (_label(server, job) or {}).get("product_id") == wanted)
    assert (_label(server, job) or {}).get("verdict") == "corrected"
    assert "Corrected to" in console.find_element(By.CSS_SELECTOR, ".current-label").text
    console.refresh()  # the label is server-rendered too, with who and when
    assert "ago" in console.find_element(By.CSS_SELECTOR, ".current-label").text
    shoot(console, "job-labelled")
    _save(console, "console-job.png")
    # On a phone the answer comes first.
    console.set_window_size(390, 900)
    answer_y = console.find_element(By.CSS_SELECTOR, ".answer-card").location["y"]
    photo_y = console.find_element(By.CSS_SELECTOR, ".photo-card").location["y"]
    assert answer_y < photo_y and answer_y < 700 and _no_sideways_scroll(console)
    console.set_window_size(1280, 900)


def _remaining(driver: WebDriver) -> int:
    return int(driver.find_element(By.ID, "remaining").get_attribute("data-remaining"))


def _current(driver: WebDriver) -> int:
    return int(driver.find_element(By.CSS_SELECTOR, ".review-item.current").get_attribute("data-job"))


def test_the_review_queue_triages_from_the_keyboard(
    console: WebDriver, server: Server, ticket: list[int]
) -> None:
    # Each width labels two photos and needs a third: photos of its own, whatever ran before.
    _answered(console, server, [_upload(server, photo) for photo in QUERIES[9:15]])
    for width in WIDTHS:
        console.set_window_size(width, 900)
        console.get(f"{server.base}/ui/review")
        start, first = _remaining(console), _current(console)
        assert start >= 3 and len(console.find_elements(By.CSS_SELECTOR, ".review-item.current")) == 1
        body = console.find_element(By.TAG_NAME, "body")
        body.send_keys("j")
        second = _current(console)
        assert second != first
        body.send_keys("k")
        assert _current(console) == first
        body.send_keys("1")  # this one: the top-1 → confirmed, and the queue moves on
        _wait(console, lambda d, n=start - 1, was=first: _remaining(d) == n and _current(d) != was)
        assert (_label(server, first) or {}).get("verdict") == "confirmed"
        assert f"{start - 1} photo" in console.find_element(By.ID, "remaining").text
        nxt = _current(console)
        body.send_keys("n")
        _wait(console, lambda d, n=start - 2, was=nxt: _remaining(d) == n and _current(d) != was)
        assert (_label(server, nxt) or {}).get("verdict") == "not_in_catalog"
        assert _no_sideways_scroll(console)
        if width == 1280:
            shoot(console, "review")
            _save(console, "console-review.png")
        target = _current(console)
        console.find_element(By.TAG_NAME, "body").send_keys(Keys.ENTER)
        _wait(console, lambda d, job=target: d.current_url.endswith(f"/ui/jobs/{job}"))
    console.set_window_size(1280, 900)


def test_o_opens_the_picker_and_u_marks_a_photo_unusable(console: WebDriver, server: Server) -> None:
    console.get(f"{server.base}/ui/review")
    if _remaining(console) < 2:
        _answered(console, server, [_upload(server, p) for p in QUERIES[5:7]])
        console.get(f"{server.base}/ui/review")
    job = _current(console)
    console.find_element(By.TAG_NAME, "body").send_keys("o")
    assert console.switch_to.active_element.get_attribute("class") == "picker-input"
    console.switch_to.active_element.send_keys(Keys.ESCAPE)
    console.execute_script("document.activeElement.blur()")
    console.find_element(By.TAG_NAME, "body").send_keys("u")
    _wait(console, lambda d: (_label(server, job) or {}).get("verdict") == "unusable")


def test_phone_layout_keeps_status_error_and_retry_in_view(
    console: WebDriver, server: Server, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a photo")
    failed = _upload(server, broken)
    ok = _upload(server, QUERIES[7])
    _answered(console, server, [ok])
    _wait(console, lambda _: server.api.get(f"/v1/jobs/{failed}").json()["status"] == "failed", 60)
    console.set_window_size(390, 900)
    console.get(f"{server.base}/ui/jobs")
    assert _no_sideways_scroll(console)
    for selector in (".badge", ".error-summary", ".actions a, .actions button"):
        element = console.find_element(By.CSS_SELECTOR, f"#job-{failed} {selector}")
        rect = console.execute_script("return arguments[0].getBoundingClientRect().toJSON()", element)
        assert element.is_displayed() and rect["right"] <= 390, (selector, rect)
    assert "permanent" in console.find_element(By.CSS_SELECTOR, f"#job-{failed}").text
    retry = console.find_element(By.CSS_SELECTOR, f"#job-{ok} .actions button")
    assert console.execute_script("return arguments[0].getBoundingClientRect().right", retry) <= 390
    shoot(console, "jobs-phone")
    console.get(f"{server.base}/ui/health")
    wrap = console.find_element(By.CSS_SELECTOR, ".chart-wrap")
    scrolled = console.execute_script(
        "const w = arguments[0]; return w.scrollWidth <= w.clientWidth || w.scrollLeft > 0", wrap
    )
    assert scrolled and _no_sideways_scroll(console)  # the current hour is in view
    console.get(f"{server.base}/ui/catalog")
    assert _no_sideways_scroll(console)
    ids = console.find_elements(By.CSS_SELECTOR, "td.id a")
    assert ids and all(e.size["height"] < 30 for e in ids[:10])  # one line each: not broken mid-token
    assert console.find_elements(By.CSS_SELECTOR, "td.photo img.thumb")  # a thumbnail per product
    console.set_window_size(1280, 900)


def test_rows_can_be_selected_and_retried_and_the_list_exported(console: WebDriver, server: Server) -> None:
    ok = _upload(server, QUERIES[8])
    _answered(console, server, [ok])
    console.get(f"{server.base}/ui/jobs")
    before = server.api.get(f"/v1/jobs/{ok}").json()["updated_at"]
    assert console.find_element(By.ID, "retry-selected").get_attribute("disabled")
    console.find_element(By.CSS_SELECTOR, f"#job-{ok} td.select input").click()
    assert "1 job selected" in console.find_element(By.ID, "selected-count").text
    console.find_element(By.ID, "retry-selected").click()
    _wait(console, lambda d: "retried=1" in d.current_url)
    assert "1 job sent to be retried" in console.find_element(By.CSS_SELECTOR, ".notice").text
    _wait(console, lambda _: server.api.get(f"/v1/jobs/{ok}").json()["updated_at"] != before)
    href = console.find_element(By.LINK_TEXT, "Export CSV").get_attribute("href")
    exported = server.api.get(href.replace(server.base, ""))
    assert exported.headers["content-type"].startswith("text/csv") and f"\n{ok}," in exported.text


def test_the_try_page_says_matching_while_it_works(console: WebDriver, server: Server) -> None:
    console.get(f"{server.base}/ui/try")
    said = console.execute_script(
        "const form = document.getElementById('try-form');"
        "form.requestSubmit(form.querySelector('.btn-primary'));"
        "return document.getElementById('try-status').textContent;"
    )
    assert said == "Matching…"
    _wait(console, lambda d: d.find_element(By.ID, "try-status").text == "")
