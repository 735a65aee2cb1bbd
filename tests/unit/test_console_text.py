"""The console's words: relative times, plurals, kind labels, percentages, bands, filter errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import imagematch.api  # noqa: F401  (the console package is loaded through the API package)
from imagematch.console.listing import JobFilter, parse_filter
from imagematch.console.pages import KIND_LABELS, ago, band_chip, kind_label, percent, plural
from imagematch.models import JobKind

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("then", "words"),
    [
        (NOW - timedelta(seconds=5), "5 s ago"),
        (NOW - timedelta(minutes=3), "3 min ago"),
        (NOW - timedelta(hours=2), "2 h ago"),
        (NOW - timedelta(days=4), "4 d ago"),
        (NOW + timedelta(minutes=10), "in 10 min"),
        ("2026-12-07T11:00:00+00:00", "1 h ago"),
    ],
)
def test_times_are_relative_with_the_iso_time_as_tooltip(then: datetime | str, words: str) -> None:
    html = str(ago(then, NOW))
    assert f">{words}</time>" in html and 'title="2026-' in html


def test_plurals_kind_labels_and_percentages() -> None:
    assert plural(1, "product") == "1 product" and plural(2, "product") == "2 products"
    assert plural(0, "photo") == "0 photos"
    assert {str(k) for k in JobKind} <= set(KIND_LABELS)  # one label for every core kind
    assert {"catalog_event", "zendesk_ticket", "zendesk_image", "zendesk_note"} <= set(KIND_LABELS)
    assert kind_label(JobKind.MATCH_IMAGE) == "Photo"
    assert percent(-0.041) == "0%" and percent(0.956) == "96%" and percent(None) == "—"


def test_a_band_is_words_and_colour_with_its_confidence() -> None:
    chip = str(band_chip("confident", 0.97))
    assert "band-confident" in chip and "Confident · 97%" in chip
    assert "No match" in str(band_chip("no_match", None)) and str(band_chip(None, 0.5)) == ""


def test_a_bad_filter_value_says_what_is_wrong() -> None:
    kinds = {str(k) for k in JobKind}
    for params, reason in [
        ({"status": "done"}, "not a job status"),
        ({"kind": "photo"}, "not a job kind"),
        ({"since": "2026-13-01"}, "not a date for From"),
        ({"entity": "ticket"}, "not an entity"),
    ]:
        with pytest.raises(ValueError, match=reason):
            parse_filter(params, kinds=kinds, product_ids=set())
    flt = parse_filter({"q": " GS-005 ", "entity": "ticket/101"}, kinds=kinds, product_ids={"GS-005"})
    assert flt.product_id == "GS-005" and str(flt.entity) == "ticket/101"
    assert flt.query() == {"q": "GS-005", "entity": "ticket/101"}
    assert JobFilter().query() == {}
