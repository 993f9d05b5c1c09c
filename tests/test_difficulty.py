"""The probe recovers a known signal from synthetic features and finds none in noise."""

from __future__ import annotations

import numpy as np
import pytest
from utscale import difficulty

pytest.importorskip("torch")


def test_probe_recovers_a_known_signal_out_of_fold():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 12))
    true = 1 / (1 + np.exp(-(x[:, 0] * 2 - x[:, 1])))
    y = np.clip(true + rng.normal(scale=0.05, size=240), 0, 1)
    folds = difficulty.fold_ids(240, 5, seed=1)
    for cfg in (difficulty.ProbeConfig(hidden=32, epochs=200), difficulty.ProbeConfig(hidden=0, epochs=200)):
        pred = difficulty.cross_validated(x, y, folds, cfg)
        scores, calibration = difficulty.probe_quality(pred, y)
        assert scores["pearson"] > 0.85 and scores["mae"] < 0.12
        assert calibration.problems.sum() == 240


def test_probe_finds_nothing_in_noise():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 12))
    y = rng.random(200)
    pred = difficulty.cross_validated(x, y, difficulty.fold_ids(200, 5, 3), difficulty.ProbeConfig(hidden=16, epochs=100))
    assert abs(difficulty.probe_quality(pred, y)[0]["pearson"]) < 0.3


def test_folds_are_balanced_and_seeded():
    a = difficulty.fold_ids(23, 5, 7)
    assert sorted(np.bincount(a).tolist(), reverse=True) == [5, 5, 5, 4, 4]  # sizes differ by at most one
    assert (a == difficulty.fold_ids(23, 5, 7)).all() and not (a == difficulty.fold_ids(23, 5, 8)).all()


def test_text_features():
    f = difficulty.text_features(["def f():\n    '''>>> f()\n    1'''", "x"])
    assert f.shape == (2, 5) and f[0, 3] == 1 and f[1, 3] == 0
