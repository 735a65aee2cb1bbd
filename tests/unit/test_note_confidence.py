"""The Zendesk note shows the answer's band in words with its confidence, never a negative %."""

from __future__ import annotations

import re

import pytest

from imagematch.calibration import Band
from imagematch.models import Match
from imagematch.sources.zendesk.notes import render_note


def _note(score: float, band: Band | None, confidence: float | None, min_score: float = 0.0) -> str:
    matches = [Match(product_id="P1", name="Banana", score=score, image_id="i")]
    return render_note(
        attachment_id="9",
        file_name="a.png",
        matches=matches,
        min_score=min_score,
        band=band,
        confidence=confidence,
    )


@pytest.mark.parametrize(
    ("band", "words"), [(Band.CONFIDENT, "Confident"), (Band.CHECK, "Check"), (Band.NO_MATCH, "No match")]
)
def test_the_band_and_its_confidence_are_spelled_out(band: Band, words: str) -> None:
    html = _note(0.61, band, 0.97)
    assert f"<strong>{words}</strong>: 97% likely that the first product is right" in html
    assert "score 0.610" in html


def test_a_negative_score_never_shows_as_a_negative_percentage() -> None:
    html = _note(-0.041, Band.NO_MATCH, 0.02)
    assert re.findall(r"(-?\d+)%", html) == ["2"] and "score -0.041" in html  # raw score in the details


def test_the_raw_floor_still_makes_no_match_and_old_notes_keep_their_wording() -> None:
    assert "<strong>No match</strong>" in _note(0.2, Band.CHECK, 0.6, min_score=0.25)
    old = _note(0.2, None, None, min_score=0.25)
    assert "No confident match" in old and "likely" not in old
