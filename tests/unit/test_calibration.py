"""Calibrated confidence: the fit, the bands, the error measure and the shipped fit."""

from __future__ import annotations

import numpy as np
import pytest

from imagematch.calibration import (
    Band,
    Calibration,
    LabelledRanking,
    band_without_fit,
    expected_calibration_error,
    fit_calibration,
    shipped_calibration,
)
from imagematch.config import DEFAULT_MODEL
from imagematch.embedder import load_embedder


def _rows(n: int, seed: int = 0) -> list[LabelledRanking]:
    """Answers whose chance of being right truly is σ(8·score + 20·margin − 5)."""
    rng = np.random.default_rng(seed)
    score, margin = rng.uniform(0.1, 0.7, n), rng.uniform(0.0, 0.2, n)
    p = 1 / (1 + np.exp(-(8 * score + 20 * margin - 5)))
    right = rng.uniform(size=n) < p
    return [
        LabelledRanking(top_score=s, margin=m, correct=bool(r))
        for s, m, r in zip(score, margin, right, strict=True)
    ]


def test_fit_recovers_a_logistic_truth_and_is_calibrated_on_fresh_rows() -> None:
    fit = fit_calibration(_rows(4000), embedder_id="e", fitted_on="synthetic")
    assert fit.score_weight == pytest.approx(8, abs=1.5) and fit.margin_weight == pytest.approx(20, abs=4)
    fresh = _rows(4000, seed=1)
    conf = [fit.confidence(r.top_score, r.top_score - r.margin) for r in fresh]
    assert expected_calibration_error(conf, [r.correct for r in fresh]) < 0.03
    assert fit.labels == 4000 and fit.fitted_on == "synthetic"


def test_confidence_is_a_probability_and_grows_with_score_and_margin() -> None:
    fit = Calibration(
        embedder_id="e", score_weight=8, margin_weight=20, intercept=-5, fitted_on="t", labels=1
    )
    values = [fit.confidence(s, s - m) for s in (-1.0, 0.0, 0.5, 2.0) for m in (0.0, 0.1, 1.0)]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert fit.confidence(0.5, 0.45) < fit.confidence(0.6, 0.55) < fit.confidence(0.6, 0.3)
    assert fit.assess([]) == (None, Band.NO_MATCH)
    assert fit.assess([0.9, 0.2])[1] is Band.CONFIDENT
    assert fit.assess([0.3, 0.29])[1] is Band.NO_MATCH
    assert fit.assess([0.5, 0.45])[1] is Band.CHECK


def test_a_fit_needs_right_and_wrong_answers() -> None:
    with pytest.raises(ValueError, match="both right and wrong"):
        fit_calibration(
            [LabelledRanking(top_score=0.5, margin=0.1, correct=True)], embedder_id="e", fitted_on="t"
        )


def test_without_a_fit_the_raw_threshold_decides_and_nothing_is_confident() -> None:
    assert band_without_fit([0.9, 0.1], 0.25) is Band.CHECK
    assert band_without_fit([0.2], 0.25) is Band.NO_MATCH and band_without_fit([], 0.25) is Band.NO_MATCH


def test_ece_of_a_perfectly_calibrated_and_of_an_overconfident_model() -> None:
    assert expected_calibration_error([0.5, 0.5], [True, False]) == 0.0
    assert expected_calibration_error([1.0, 1.0], [False, False]) == 1.0


def test_the_default_model_ships_a_fit_and_unknown_models_have_none() -> None:
    embedder_id = load_embedder(DEFAULT_MODEL).embedder_id
    fit = shipped_calibration(embedder_id)
    assert fit is not None and fit.labels > 100 and "train" in fit.fitted_on
    assert shipped_calibration("no-such-model") is None
