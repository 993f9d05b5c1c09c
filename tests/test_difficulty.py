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
    for cfg in (difficulty.ProbeConfig(hidden=64), difficulty.ProbeConfig(hidden=0)):
        pred = difficulty.cross_validated(x, y, folds, cfg)
        scores, calibration = difficulty.probe_quality(pred, y)
        assert scores["pearson"] > 0.85 and scores["mae"] < 0.12
        assert calibration.problems.sum() == 240


def test_probe_finds_nothing_in_noise():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 12))
    y = rng.random(200)
    pred = difficulty.cross_validated(x, y, difficulty.fold_ids(200, 5, 3), difficulty.ProbeConfig(hidden=16))
    assert abs(difficulty.probe_quality(pred, y)[0]["pearson"]) < 0.3


def test_folds_are_balanced_and_seeded():
    a = difficulty.fold_ids(23, 5, 7)
    assert sorted(np.bincount(a).tolist(), reverse=True) == [5, 5, 5, 4, 4]  # sizes differ by at most one
    assert (a == difficulty.fold_ids(23, 5, 7)).all() and not (a == difficulty.fold_ids(23, 5, 8)).all()


def test_text_features():
    f = difficulty.text_features(["def f():\n    '''>>> f()\n    1'''", "x"])
    assert f.shape == (2, 5) and f[0, 3] == 1 and f[1, 3] == 0


# ---- reproducible on any CPU (issue: the committed runs on a machine with other float kernels) ----

def _signal(n: int = 48, width: int = 64, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, width)).astype(np.float32)
    return x, np.clip(1 / (1 + np.exp(-x[:, 0])) + rng.normal(scale=0.05, size=n), 0, 1)


def test_the_probe_does_not_amplify_last_bit_noise():
    """Another CPU's float64 arithmetic differs in the last bits: a 1e-13 change of every input (a thousand
    times float64's resolution) leaves every rounded prediction unchanged, and a one-ulp change of float32
    features moves none by more than a few rounding steps (gradient descent on both layers moved them by
    up to 0.37 on real features)."""
    x, y = _signal()
    folds = difficulty.fold_ids(len(y), 4, 0)
    sign = np.random.default_rng(1).choice([-1, 1], x.shape)
    for cfg in (difficulty.ProbeConfig(hidden=64, seed=3), difficulty.ProbeConfig(hidden=0)):
        base = difficulty.cross_validated(x, y, folds, cfg)
        assert np.array_equal(base, difficulty.cross_validated(x.astype(np.float64) * (1 + sign * 1e-13), y, folds, cfg))
        one_ulp = difficulty.cross_validated(x * (1 + sign * np.float32(2 ** -23)), y, folds, cfg)
        assert np.abs(one_ulp - base).max() <= 1e-5
        assert np.array_equal(base, np.round(base, difficulty.PREDICTION_DECIMALS))


def test_the_probe_is_a_seeded_two_layer_network():
    x, y = _signal()
    folds = difficulty.fold_ids(len(y), 4, 0)
    a, b = (difficulty.cross_validated(x, y, folds, difficulty.ProbeConfig(seed=s)) for s in (3, 4))
    assert np.array_equal(a, difficulty.cross_validated(x, y, folds, difficulty.ProbeConfig(seed=3)))
    assert not np.array_equal(a, b)  # the seed draws the hidden layer


@pytest.fixture
def ci_run(results_root):
    from utscale import runs

    return runs.open_run("ci", {"PROBE_FEATURES_PATH": ""})


def test_features_are_stored_with_provenance_and_never_recomputed(ci_run, monkeypatch):
    """Simulates another machine: its forward pass gives features that differ in the last bits; the run
    reads the stored ones back, so its difficulty table is the same bits."""
    x, y = _signal(n=12, width=16)
    ids, texts = [f"HumanEval/{i}" for i in range(12)], [f"prompt {i}" for i in range(12)]
    model = "qwen2.5-coder-0.5b-instruct"
    calls = []
    monkeypatch.setattr(difficulty, "hidden_states", lambda _d, t, _l: calls.append(t) or x)
    monkeypatch.setattr(difficulty.models, "embedded_model_dir", lambda _name: "unused")
    first = difficulty.stored_hidden_states(ci_run, ids, texts, model, -8)
    assert calls == [texts] and np.array_equal(first, x)
    provenance = ci_run.manifest()["probe_features"]
    assert provenance["origin"] == "computed" and provenance["layer"] == -8 and provenance["dtype"] == "float32"
    assert provenance["model_sha256"] == difficulty.models.EMBEDDED[model].sha256 and provenance["cpu"]
    table, _ = difficulty.predict(ci_run, ids, texts, y)

    other_machine = x * (1 + np.float32(2 ** -23))  # one ulp
    monkeypatch.setattr(difficulty, "hidden_states", lambda _d, t, _l: calls.append(t) or other_machine)
    again = difficulty.stored_hidden_states(ci_run, ids[::-1], texts[::-1], model, -8)  # in the caller's order
    assert len(calls) == 1 and np.array_equal(again, x[::-1])
    assert difficulty.predict(ci_run, ids, texts, y)[0].equals(table)
    with pytest.raises(difficulty.RunConflict, match="other prompts"):
        difficulty.stored_hidden_states(ci_run, ids, ["changed"] + texts[1:], model, -8)
    with pytest.raises(difficulty.RunConflict, match="another model or another layer"):
        difficulty.stored_hidden_states(ci_run, ids, texts, model, -4)
    with pytest.raises(difficulty.RunConflict, match="no probe features"):
        difficulty.stored_hidden_states(ci_run, ids + ["HumanEval/99"], texts + ["x"], model, -8)


def test_stored_features_from_a_file_are_copied_into_the_run(ci_run, results_root, monkeypatch):
    x, _ = _signal(n=4, width=8)
    ids, texts = [f"t{i}" for i in range(4)], [f"p{i}" for i in range(4)]
    path = results_root / "features.parquet"
    difficulty.features_table(ids, texts, x, "qwen2.5-coder-0.5b-instruct", -8).to_parquet(path)
    monkeypatch.setattr(difficulty, "hidden_states", lambda *a: pytest.fail("the model must not run"))
    got = difficulty.stored_hidden_states(ci_run, ids[1:], texts[1:], "qwen2.5-coder-0.5b-instruct", -8, str(path))
    assert np.array_equal(got, x[1:]) and ci_run.has_table(difficulty.FEATURES_TABLE)
    assert ci_run.manifest()["probe_features"]["origin"] == f"copied from {path}"


def test_a_recomputation_that_drifted_keeps_the_stored_table_and_says_so(ci_run, monkeypatch):
    x, y = _signal(n=12, width=16)
    ids, texts = [f"HumanEval/{i}" for i in range(12)], [f"prompt {i}" for i in range(12)]
    monkeypatch.setattr(difficulty, "stored_hidden_states", lambda *a: x)
    stored, _ = difficulty.predict(ci_run, ids, texts, y)
    real = difficulty.cross_validated
    monkeypatch.setattr(difficulty, "cross_validated", lambda *a: real(*a) + 3e-7)  # another CPU's last bits
    kept, _ = difficulty.predict(ci_run, ids, texts, y)
    assert kept.equals(stored)
    drift = ci_run.manifest()["drift"]["difficulty"]
    assert set(drift["max_abs_difference"]) == {"predicted", "predicted_text_baseline"}
    assert drift["max_abs_difference"]["predicted"] == pytest.approx(3e-7, rel=0.1)
    monkeypatch.setattr(difficulty, "cross_validated", lambda *a: real(*a) + 0.01)  # a real change: refused
    with pytest.raises(difficulty.RunConflict, match="different difficulty table"):
        difficulty.predict(ci_run, ids, texts, y)


def test_the_predictors_table_scores_each_predictor_in_order():
    true = np.array([0.1, 0.4, 0.5, 0.9])
    table = difficulty.predictors_table({"exact": true.copy(), "reversed": true[::-1].copy()}, true)
    assert table.predictor.tolist() == ["exact", "reversed"]
    assert table.pearson.iloc[0] == pytest.approx(1.0) and table.mae.iloc[0] == 0.0
    assert table.spearman.iloc[1] == pytest.approx(-1.0)
