"""The difficulty probe (docs/method.md §5.1): predict a problem's pass rate from the policy's hidden states.

Features are the hidden state of the last prompt token at one layer of the policy model, read with
transformers on CPU from the same converted folder the vLLM engine uses. The probe is a two-layer
feed-forward network with a scalar output, trained with soft-label binary cross-entropy against the
observed pass rates, and judged only by k-fold cross-validated predictions (a problem is never
predicted by a probe that saw it). A cheap baseline with text-length features uses the same loss.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd


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
    epochs: int = 300
    lr: float = 1e-2
    weight_decay: float = 1e-3
    seed: int = 0


def fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, cfg: ProbeConfig) -> np.ndarray:
    """Train on soft labels in [0, 1] (soft-label BCE), predict pass rates for x_test."""
    import torch

    torch.manual_seed(cfg.seed)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6
    xt = torch.tensor((x_train - mean) / std, dtype=torch.float32)
    yt = torch.tensor(y_train, dtype=torch.float32)
    width = x_train.shape[1]
    layers = ([torch.nn.Linear(width, cfg.hidden), torch.nn.ReLU(), torch.nn.Linear(cfg.hidden, 1)]
              if cfg.hidden else [torch.nn.Linear(width, 1)])
    model = torch.nn.Sequential(*layers)
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss()  # with soft targets: −[λ log λ̂ + (1 − λ) log(1 − λ̂)]
    for _ in range(cfg.epochs):
        optimiser.zero_grad()
        loss = loss_fn(model(xt).squeeze(-1), yt)
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        logits = model(torch.tensor((x_test - mean) / std, dtype=torch.float32)).squeeze(-1)
    return torch.sigmoid(logits).numpy().astype(float)


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
