"""Stopping rules for online dynamic scaling: when a problem's vote is settled (docs/method.md §8).

Each rule reads only the pass matrix revealed so far, never the ground truth; `utscale.online` runs them
on simulated and live trajectories.

Five rules, each a function of the trajectory of the vote as tests are revealed:

- ``stability`` (k): the kept set (the solutions the voting rule keeps) has not changed over the last k
  valid tests.
- ``margin`` (horizon h): no solution outside the kept set can catch up with the kept set's pass count
  with the tests still allowed (h minus the tests so far, weighted). The final pick is then certain to come
  from today's kept set; the kept solutions agree on every test so far and are treated as one.
- ``posterior`` (α, an explicit error target): for the leader and each solution outside the kept set, the
  tests that tell them apart are a Beta(1 + b, 1 + a) posterior of how often the challenger wins one (a
  leader's wins, b the challenger's); the rule stops when no challenger is better than the leader with
  posterior probability above α. When every solution agrees on every test so far there is no evidence at
  all, and the rule of succession, 1 / (t + 2) with t valid tests, is the chance that the next test
  separates them.
- ``adaptive`` (α): the published peer, Adaptive-Consistency's Beta criterion (Aggarwal et al., EMNLP
  2023), applied to the pass-set clusters' votes as they stand: a test is a voter for every solution it
  passes, solutions that agree on every test so far are one answer, the leader's votes are its pass count
  a and the strongest other answer's are b (0 when there is none); stop when
  P(Beta(1 + a, 1 + b) > ½) ≥ 1 − α (the package's `BetaStoppingCriteria` at conf_thresh 1 − α). It
  treats the two counts as a two-way race, so tests both pass count for both.
- ``anytime`` (α), a stated error guarantee under data-driven stopping: for the leader and each solution
  j outside the kept set, E = 2^(a+b+1) B(1 + a, 1 + b) P(Beta(1 + a, 1 + b) > ½) over the a + b tests
  that separate them is a mixture likelihood ratio, a nonnegative supermartingale with E₀ = 1 while j is
  at least as good as the leader on separating tests. The rule stops when every outsider's E reaches
  n(n − 1) / α (a union bound over the ordered pairs of the n solutions), nobody in the kept set differs
  from the leader on any test so far, and someone is outside it. By Ville's inequality, for tests drawn
  independently from the generator, with probability at least 1 − α every solution the rule may pick wins
  most separating tests against every solution it has been told apart from, however the stopping time
  was chosen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import betainc, betaln

STOPPING_RULES = ("stability", "margin", "posterior", "adaptive", "anytime")
LETTERS = {"stability": "k", "margin": "h", "posterior": "a", "adaptive": "a", "anytime": "a"}  # in row names
# the rules whose "settled" means the same under any ranking of the pass matrix (the kept set has stopped
# changing); the others reason about pass counts (margin, adaptive) or pairwise wins (posterior, anytime),
# which is what the vote ranks by, and guarantee nothing about CodeT's groups
RANKING_FREE_RULES = ("stability",)
PAIRWISE_RULES = ("posterior", "adaptive", "anytime")  # those that read the tests told apart, pair by pair


@dataclass(frozen=True)
class Setting:
    """One stopping rule with its parameter, e.g. Setting("stability", 4)."""

    rule: str
    value: float

    def __post_init__(self) -> None:
        if self.rule not in STOPPING_RULES:
            raise ValueError(f"unknown stopping rule {self.rule!r}; choose one of {STOPPING_RULES}")

    @property
    def name(self) -> str:
        """The row name in allocation.csv: online_stability_k4, online_margin_h50, online_posterior_a0.05."""
        return f"online_{self.rule}_{LETTERS[self.rule]}{self.value:g}"

    @classmethod
    def from_name(cls, name: str) -> Setting:
        """The setting a row name describes (`online_margin_h8` → Setting("margin", 8)): the inverse of `name`."""
        parts = name.split("_")
        if len(parts) != 3 or parts[0] != "online" or parts[1] not in STOPPING_RULES:
            raise ValueError(f"not an online setting name: {name!r} (e.g. online_margin_h8)")
        letter = LETTERS[parts[1]]
        if not parts[2].startswith(letter):
            raise ValueError(f"{name!r}: the {parts[1]} rule's parameter is written {letter}<value>")
        return cls(parts[1], float(parts[2][1:]))


def settings_from_config(config: dict) -> list[Setting]:
    """The online settings a run's parameters ask for (ONLINE_STABILITY, ONLINE_HORIZONS, ONLINE_ALPHAS;
    each α serves the three rules that state an error target)."""
    return ([Setting("stability", k) for k in config["ONLINE_STABILITY"]]
            + [Setting("margin", h) for h in config["ONLINE_HORIZONS"]]
            + [Setting(rule, a) for rule in ("posterior", "adaptive", "anytime") for a in config["ONLINE_ALPHAS"]])


@lru_cache(maxsize=8)
def challenger_better(m: int) -> np.ndarray:
    """P(Beta(1 + b, 1 + a) > 1/2) for a, b = 0 … m, float [m+1, m+1] indexed [a, b]: the posterior
    probability that a challenger with b wins against the leader's a (uniform prior) wins most tests.

    For integer parameters the regularised incomplete beta is a binomial tail,
    I_½(1 + a, 1 + b) = P(Binomial(a + b + 1, ½) ≥ a + 1), computed exactly from binomial coefficients."""
    size = 2 * m + 2
    pmf = np.zeros((size + 1, size + 1))  # pmf[n, k] = P(Binomial(n, ½) = k), by Pascal's rule
    pmf[0, 0] = 1.0
    for n in range(1, size + 1):
        pmf[n, 1:] = pmf[n - 1, :-1] / 2
        pmf[n, :] += pmf[n - 1, :] / 2
    tail = np.cumsum(pmf[:, ::-1], axis=1)[:, ::-1]  # tail[n, k] = P(Binomial(n, ½) ≥ k)
    a, b = np.meshgrid(np.arange(m + 1), np.arange(m + 1), indexing="ij")
    table = tail[a + b + 1, a + 1]
    return table


def leader_confidence(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Adaptive-Consistency's Beta criterion, P(Beta(1 + a, 1 + b) > ½), for vote counts a (the leader)
    and b (the runner-up), real-valued so that weighted votes work too: I_½(1 + b, 1 + a)."""
    return betainc(1.0 + b, 1.0 + a, 0.5)


def log_evalue(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log E for a separating tests won by the leader and b by a challenger: the likelihood ratio of
    Bernoulli(θ) against θ = ½, mixed over θ uniform on [½, 1]. Under any θ ≤ ½ (the challenger at least as
    good) each ratio, hence the mixture, is a nonnegative supermartingale starting at 1, so by Ville's
    inequality P(E ever reaches 1/α) ≤ α. In closed form E = 2^(a+b+1) B(1 + a, 1 + b) I_½(1 + b, 1 + a)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return (a + b + 1.0) * np.log(2.0) + betaln(1.0 + a, 1.0 + b) + np.log(leader_confidence(a, b))


def anytime_threshold(n: np.ndarray, alpha: float) -> np.ndarray:
    """log(n(n − 1)/α): the evidence every pair must reach so that all ordered pairs of n solutions
    together err with probability at most α (a union bound)."""
    n = np.asarray(n, dtype=float)
    return np.log(np.maximum(n * (n - 1.0), 1.0) / alpha)


def _first_true(mask: np.ndarray, default: int) -> np.ndarray:
    """Index of the first True along axis 0, `default` where none is."""
    hit = mask.any(axis=0)
    return np.where(hit, mask.argmax(axis=0), default)


def stopping_indices(checkpoints: np.ndarray, kept: np.ndarray, counts: np.ndarray, real: np.ndarray,
                     weight_left: np.ndarray, discordant: tuple[np.ndarray, np.ndarray] | None, valid: np.ndarray,
                     settings: Sequence[Setting], min_tests: int) -> dict[str, np.ndarray]:
    """Each setting's stopping checkpoint, int [B], from one chunk's trajectory (all arrays [T, B, …]).

    `valid` [T, B] counts the executed tests revealed so far. An invalid test (nothing extracted, a
    duplicate) is paid for and counts toward min_tests and the margin rule's horizon, both budgets of
    tests generated, but it is no evidence: the stability window and the rule of succession count valid
    tests only (a run of invalid tests is not a run of agreement). `discordant` (the tests the leader
    and each solution won against each other) is needed only by the rules in PAIRWISE_RULES: None when
    no setting asks for one of them, so that a caller need not count pairs nobody reads."""
    last = len(checkpoints) - 1
    t = checkpoints[:, None]
    allowed = t >= min_tests
    stops: dict[str, np.ndarray] = {}
    outside = real & ~kept
    top = np.where(real, counts, -np.inf).max(axis=-1)
    if any(s.rule in PAIRWISE_RULES for s in settings) and discordant is None:
        raise ValueError(f"the rules {PAIRWISE_RULES} need the discordant tests")
    memo: dict[str, np.ndarray] = {}

    def once(name: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """What several settings of one rule share, computed for the first of them."""
        if name not in memo:
            memo[name] = compute()
        return memo[name]

    def last_change() -> np.ndarray:
        """The checkpoint index of the last change of the kept set at or before each checkpoint."""
        changed = np.zeros(kept.shape[:2], dtype=bool)
        changed[1:] = (kept[1:] != kept[:-1]).any(axis=-1)
        return np.maximum.accumulate(np.where(changed, np.arange(len(checkpoints))[:, None], 0), axis=0)

    def risk() -> np.ndarray:
        assert discordant is not None
        posterior = challenger_better(int(checkpoints[-1]))[discordant[0].astype(np.int64), discordant[1].astype(np.int64)]
        worst = np.where(outside, posterior, 0.0).max(axis=-1)
        return np.where(outside.any(axis=-1), worst, 1.0 / (valid + 2.0))

    def differs() -> np.ndarray:
        """Solutions that differ from the leader on some test so far: other answers (pass-set clusters)."""
        assert discordant is not None
        return real & (discordant[0] + discordant[1] > 0)

    def confidence() -> np.ndarray:
        return leader_confidence(top, np.where(once("differs", differs), counts, 0.0).max(axis=-1))

    def weakest() -> np.ndarray:
        """The weakest evidence against any outsider."""
        assert discordant is not None
        return np.where(outside, log_evalue(*discordant), np.inf).min(axis=-1)

    for s in settings:
        if s.rule == "stability":
            since_change = valid - np.take_along_axis(valid, once("last_change", last_change), axis=0)
            settled = allowed & (since_change >= s.value) & (valid >= s.value)
        elif s.rule == "margin":
            # the strongest solution outside the kept set (-inf: nobody is outside it)
            challenger = once("challenger", lambda: np.where(outside, counts, -np.inf).max(axis=-1))
            horizon_left = np.maximum(weight_left - weight_left[np.searchsorted(checkpoints, min(s.value, checkpoints[-1]))], 0)
            # someone must be outside the kept set: while all agree, nothing has been decided yet
            settled = allowed & outside.any(axis=-1) & (top - challenger > horizon_left)
            settled |= t >= s.value  # the horizon itself is a cap
        elif s.rule == "posterior":
            settled = allowed & (once("risk", risk) <= s.value)
        elif s.rule == "adaptive":
            settled = allowed & (once("confidence", confidence) >= 1.0 - s.value)
        else:
            # the kept set must agree with the leader on every test so far
            one_voice = ~(kept & once("differs", differs)).any(axis=-1)
            settled = (allowed & outside.any(axis=-1) & one_voice
                       & (once("weakest", weakest) >= anytime_threshold(real.sum(axis=-1), s.value)))
        stops[s.name] = _first_true(settled, last)
    return stops
