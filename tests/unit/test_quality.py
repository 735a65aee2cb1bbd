"""The quality tier on real query photos: a blurred, darkened or shrunk copy is flagged with the
reason and the advice to give; the photo itself is not; a resend of the same shot is a duplicate."""

from __future__ import annotations

import json

import pytest
from PIL import Image, ImageEnhance, ImageFilter

from imagematch.images import decode_image
from imagematch.quality import assess_quality, hash_distance, measure_quality
from imagematch.sources.zendesk.notes import render_note
from tests.conftest import SAMPLE_QUERIES


def _query_photo(n: int = 0) -> Image.Image:
    rows = [json.loads(line) for line in SAMPLE_QUERIES.read_text().splitlines() if line.strip()]
    data = (SAMPLE_QUERIES.parent / rows[n]["image"]).read_bytes()
    return decode_image(data, max_bytes=10**8, max_pixels=10**8)


def test_a_sharp_query_photo_passes() -> None:
    report = assess_quality(measure_quality(_query_photo()))
    assert not report.low_quality and report.reasons == [] and report.advice == []


def test_a_blurred_copy_is_flagged_blurry_with_advice() -> None:
    blurred = _query_photo().filter(ImageFilter.GaussianBlur(4))
    report = assess_quality(measure_quality(blurred))
    assert report.low_quality
    assert any(reason.startswith("blurry") for reason in report.reasons)
    assert any("sharper photo" in advice for advice in report.advice)


@pytest.mark.parametrize(
    ("degrade", "reason", "advice"),
    [
        (lambda im: ImageEnhance.Brightness(im).enhance(0.15), "too dark", "brighter photo"),
        (lambda im: ImageEnhance.Brightness(im).enhance(3.0), "overexposed", "without glare"),
        (lambda im: im.resize((100, 100)), "low resolution", "closer photo"),
    ],
)
def test_dark_bright_and_tiny_copies_are_flagged(degrade: object, reason: str, advice: str) -> None:
    assert callable(degrade)
    report = assess_quality(measure_quality(degrade(_query_photo())))
    assert report.low_quality and any(r.startswith(reason) for r in report.reasons)
    assert any(advice in a for a in report.advice)


def test_a_resent_shot_is_a_near_duplicate_and_another_photo_is_not() -> None:
    photo, other = measure_quality(_query_photo(0)), measure_quality(_query_photo(5))
    resent = measure_quality(_query_photo(0).resize((300, 300)))  # recompressed, resized
    assert hash_distance(photo.phash, resent.phash) <= 6 < hash_distance(photo.phash, other.phash)
    report = assess_quality(resent, earlier={"job 7": photo.phash, "job 8": other.phash})
    assert report.duplicate_of == "job 7" and not report.low_quality


def test_the_zendesk_note_says_what_to_ask_for() -> None:
    report = assess_quality(measure_quality(_query_photo().filter(ImageFilter.GaussianBlur(4))))
    note = render_note(
        attachment_id="55", file_name="a.png", matches=[], min_score=0.5,
        quality_reasons=report.reasons, quality_advice=report.advice,
    )  # fmt: skip
    assert "Low quality photo" in note and "blurry" in note and "Ask the customer for a sharper photo" in note
    assert "Low quality" not in render_note(attachment_id="55", file_name=None, matches=[], min_score=0.5)
