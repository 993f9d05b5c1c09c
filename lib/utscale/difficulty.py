"""The difficulty probe (docs/method.md §5.1): predict a problem's pass rate from the policy's hidden states.

Features are the hidden state of the last prompt token at one layer of the policy model, read with
transformers on CPU from the same converted folder the vLLM engine uses. The probe is a two-layer
feed-forward network with a scalar output, trained with soft-label binary cross-entropy against the
observed pass rates, and judged only by k-fold cross-validated predictions (a problem is never
predicted by a probe that saw it). A cheap baseline with text-length features uses the same loss.

Reproducible on any CPU (docs/method.md §5.1): a forward pass differs in its last bits from one CPU's
kernels to another's, and a probe trained by gradient descent on 12-164 problems in 896 dimensions turned
a one-ulp change of its inputs into a change of its predictions of up to 0.37. So the features are
computed once per run and stored with their provenance (`FEATURES_TABLE`), never recomputed while the
table exists; and the probe's fit has a unique optimum that moves little with its inputs (`fit_predict`),
its predictions rounded to `PREDICTION_DECIMALS`, so another CPU's arithmetic gives the same table.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from utscale import models
from utscale.engines import cpu_settings
from utscale.paths import project_root
from utscale.runs import Run, RunConflict

FEATURES_TABLE = "probe_features"  # a run artefact: what a model's forward pass gave, read back on re-render
PREDICTION_DECIMALS = 6  # float64 rounding noise in the fit (~1e-15) stays far below this


def text_features(prompts: list[str]) -> np.ndarray:
    """Length features of the policy prompt: log characters, words, lines, doctest examples, asserts."""
    rows = [[np.log1p(len(t)), np.log1p(len(t.split())), np.log1p(t.count("\n")), t.count(">>>"),
             len(re.findall(r"\bassert\b", t))] for t in prompts]
    return np.asarray(rows, dtype=float)


def hidden_states(model_dir: str, texts: list[str], layer: int, batch_size: int = 4) -> np.ndarray:
    """Hidden state of the last token of each chat-templated prompt at `layer` (negative: from the end)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"  # so the last position is every prompt's last token
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.eval()
    chats = [tokenizer.apply_chat_template([{"role": "user", "content": t}], tokenize=False,
                                           add_generation_prompt=True) for t in texts]
    out = []
    with torch.no_grad():
        for start in range(0, len(chats), batch_size):
            enc = tokenizer(chats[start:start + batch_size], return_tensors="pt", padding=True)
            # the base model only: the same hidden states, without the vocabulary-sized logits of every token
            states = model.model(**enc, output_hidden_states=True).hidden_states[layer]
            out.append(states[:, -1, :].float().numpy())
    return np.concatenate(out, axis=0)


@dataclass(frozen=True)
class ProbeConfig:
    hidden: int = 64  # width of the hidden layer; 0 gives a linear (logistic) probe
    weight_decay: float = 1e-2  # L2 penalty of the output layer: makes its loss strictly convex
    seed: int = 0  # draws the hidden layer
    max_newton_steps: int = 100


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


def fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, cfg: ProbeConfig) -> np.ndarray:
    """Train on soft labels in [0, 1] (soft-label BCE), predict pass rates for x_test.

    A two-layer feed-forward network with a scalar output whose hidden layer (ReLU, `hidden` units) is
    drawn from the seed and whose output layer is fitted by damped Newton steps to the unique minimum of
    the L2-penalised soft-label BCE, in float64. Why not gradient descent on both layers: on the
    codet-humaneval features a one-ulp change of the inputs moved those predictions by up to 0.37 (Adam,
    300 epochs), so another CPU's kernels gave another table; here the same change moves a prediction
    by at most 4e-6 and float64 rounding noise by nothing at six decimals, with a better out-of-fold fit
    (Pearson 0.73 against 0.69). Predictions are rounded to PREDICTION_DECIMALS."""
    x_train, x_test = np.asarray(x_train, dtype=np.float64), np.asarray(x_test, dtype=np.float64)
    y = np.asarray(y_train, dtype=np.float64)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6
    train, test = (x_train - mean) / std, (x_test - mean) / std
    if cfg.hidden:
        rng = np.random.default_rng(cfg.seed)
        weights = rng.normal(size=(train.shape[1], cfg.hidden)) / np.sqrt(train.shape[1])
        bias = rng.normal(size=cfg.hidden)
        train, test = np.maximum(train @ weights + bias, 0.0), np.maximum(test @ weights + bias, 0.0)
    phi = np.hstack([train, np.ones((len(train), 1))])
    penalty = np.full(phi.shape[1], cfg.weight_decay)
    penalty[-1] = 0.0  # the output bias is not penalised

    def loss(w: np.ndarray) -> float:
        z = phi @ w
        return float(np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(penalty * w * w))

    w = np.zeros(phi.shape[1])
    for _ in range(cfg.max_newton_steps):
        p = _sigmoid(phi @ w)
        gradient = phi.T @ (p - y) / len(y) + penalty * w
        hessian = (phi.T * (p * (1 - p))) @ phi / len(y) + np.diag(penalty + 1e-12)
        step = np.linalg.solve(hessian, gradient)
        t, before = 1.0, loss(w)
        while loss(w - t * step) > before - 1e-4 * t * float(gradient @ step) and t > 1e-8:
            t /= 2  # backtracking: a full Newton step can overshoot far from the minimum
        w = w - t * step
        if np.max(np.abs(t * step)) < 1e-13:
            break
    test_phi = np.hstack([test, np.ones((len(test), 1))])
    return np.round(_sigmoid(test_phi @ w), PREDICTION_DECIMALS)


def fold_ids(n: int, k: int, seed: int) -> np.ndarray:
    """A seeded assignment of n problems to k folds of (almost) equal size."""
    return np.random.default_rng(seed).permutation(np.arange(n) % k)


def cross_validated(x: np.ndarray, y: np.ndarray, folds: np.ndarray, cfg: ProbeConfig) -> np.ndarray:
    """Each problem's predicted pass rate from a probe trained on the other folds."""
    pred = np.empty(len(y))
    for fold in np.unique(folds):
        test = folds == fold
        pred[test] = fit_predict(x[~test], y[~test], x[test], cfg)
    return pred


def probe_quality(pred: np.ndarray, true: np.ndarray, bins: int = 5) -> tuple[dict[str, float], pd.DataFrame]:
    """Correlations and error of predicted vs true pass rates, and a calibration table by predicted bin."""
    a, b = pd.Series(pred), pd.Series(true)
    varied = np.std(pred) > 0 and np.std(true) > 0
    scores = {"pearson": float(a.corr(b)) if varied else float("nan"),
              "spearman": float(a.rank().corr(b.rank())) if varied else float("nan"),  # Pearson of ranks
              "mae": float(np.mean(np.abs(pred - true)))}
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(pred, edges[1:-1]), 0, bins - 1)
    calibration = pd.DataFrame([{"predicted_bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}", "problems": int((which == b).sum()),
                                 "mean_predicted": float(pred[which == b].mean()), "mean_true": float(true[which == b].mean())}
                                for b in range(bins) if (which == b).any()])
    return scores, calibration


def predictors_table(predictions: Mapping[str, np.ndarray], true: np.ndarray) -> pd.DataFrame:
    """One row per difficulty predictor (name → out-of-fold predicted pass rates): `probe_quality`'s
    correlations and error against the true pass rates, in the given order."""
    return pd.DataFrame([{"predictor": name, **probe_quality(pred, true)[0]} for name, pred in predictions.items()])


def prompt_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def features_table(task_ids: Sequence[str], texts: Sequence[str], features: np.ndarray, model: str,
                   layer: int) -> pd.DataFrame:
    """Stored features with their provenance: the prompt they read, the model and its weights' sha256,
    the layer, the dtype and the CPU that computed them."""
    import torch

    return pd.DataFrame({
        "task_id": list(task_ids), "prompt_sha256": [prompt_sha256(t) for t in texts],
        "feature": [row.astype(np.float32).tolist() for row in features],
        "model": model, "model_sha256": models.EMBEDDED[model].sha256, "layer": layer, "dtype": "float32",
        "torch": torch.__version__, "cpu": cpu_settings.cpu_description(),
        "computed": datetime.now(UTC).date().isoformat()})


def _checked(table: pd.DataFrame, task_ids: Sequence[str], texts: Sequence[str], model: str, layer: int,
             where: str) -> np.ndarray:
    """The stored features of these prompts, in their order; refused when they were read from other
    prompts, another model or another layer."""
    rows = table.set_index("task_id")
    missing = [t for t in task_ids if t not in rows.index]
    if missing:
        raise RunConflict(f"{where} holds no probe features for {missing[:3]} ({len(missing)} problems)")
    rows = rows.loc[list(task_ids)]
    wrong = [t for t, text, sha in zip(task_ids, texts, rows.prompt_sha256) if prompt_sha256(text) != sha]
    if wrong or set(rows.model) != {model} or set(rows.layer) != {layer} \
            or set(rows.model_sha256) != {models.EMBEDDED[model].sha256}:
        raise RunConflict(f"{where} holds probe features of other prompts ({wrong[:3]}), another model or another "
                          f"layer than {model} layer {layer}; delete it to compute them again")
    return np.asarray(rows.feature.tolist(), dtype=np.float32)


def stored_hidden_states(run: Run, task_ids: Sequence[str], texts: Sequence[str], model: str, layer: int,
                         source_path: str = "") -> np.ndarray:
    """The hidden-state features of a run: read from the run's `FEATURES_TABLE` when it exists; else
    copied from `source_path` (a stored table, e.g. the ci profile's fixture) or computed with the model,
    and stored with their provenance (also in the manifest). Never recomputed while the table exists, so a
    re-render on another CPU reads the same bits."""
    if run.has_table(FEATURES_TABLE):
        return _checked(run.read_table(FEATURES_TABLE), task_ids, texts, model, layer, f"run {run.run_id}")
    if source_path:
        path = Path(source_path) if Path(source_path).is_absolute() else project_root() / source_path
        table = pd.read_parquet(path)
        features = _checked(table, task_ids, texts, model, layer, str(source_path))
        table = table.set_index("task_id").loc[list(task_ids)].reset_index()
        origin = f"copied from {source_path}"
    else:
        features = hidden_states(str(models.embedded_model_dir(model)), list(texts), layer)
        table, origin = features_table(task_ids, texts, features, model, layer), "computed"
    run.write_table(FEATURES_TABLE, table, key=["task_id"])
    first = table.iloc[0]
    run.update_manifest(probe_features={"origin": origin, "model": model, "layer": layer, "problems": len(table),
                                        **{k: str(first[k]) for k in ("model_sha256", "dtype", "torch", "cpu",
                                                                      "computed")}})
    return np.asarray(features, dtype=np.float32)


def predict(run: Run, task_ids: Sequence[str], texts: Sequence[str], gold: np.ndarray) -> tuple[pd.DataFrame, str]:
    """The run's difficulty table, in `task_ids` order: each problem's gold pass rate, the probe's and the
    text baseline's out-of-fold predictions and its fold; and what the probe read. The table is written
    to the run and read back, so a recomputation that drifted only numerically uses the stored one
    (`Run.write_table`)."""
    cfg = run.config
    folds = fold_ids(len(gold), cfg["PROBE_FOLDS"], cfg["SEED"])
    baseline_x = text_features(list(texts))
    probe_model = cfg["PROBE_MODEL"] or cfg["POLICY_MODEL"]
    proxy = "" if probe_model == cfg["POLICY_MODEL"] else f" (a proxy: the policy is {cfg['POLICY_MODEL']})"
    if cfg["PROBE_FEATURES"] == "hidden" and probe_model in models.EMBEDDED:
        features = stored_hidden_states(run, task_ids, texts, probe_model, cfg["PROBE_LAYER"],
                                        cfg["PROBE_FEATURES_PATH"])
        source = f"hidden states of {probe_model}, layer {cfg['PROBE_LAYER']}{proxy}"
    else:
        features, source = baseline_x, "text-length features (no local weights for the policy)"
    predicted = cross_validated(features, gold, folds, ProbeConfig(hidden=cfg["PROBE_WIDTH"], seed=cfg["SEED"]))
    text_only = cross_validated(baseline_x, gold, folds, ProbeConfig(hidden=0, seed=cfg["SEED"]))
    run.write_table("difficulty", pd.DataFrame({"task_id": list(task_ids), "pass_rate": gold, "predicted": predicted,
                                                "predicted_text_baseline": text_only, "fold": folds}), key=["task_id"])
    return run.read_table("difficulty").set_index("task_id").loc[list(task_ids)].reset_index(), source
