"""Nucleus (top-p) masking on CPU without sorting the vocabulary.

vLLM-CPU applies top-p by sorting every row of logits (151,936 entries for Qwen2.5) at every decoding
step; profiled on the embedded job, that sort was 42% of a step, as much as the model's forward pass.
The nucleus of a peaked distribution holds a few tokens, so the mask can be computed from the
`PREFIX` largest logits alone, and it is exact whenever those hold at least p of the probability mass
(the rows where they do not fall back to vLLM's own sort). The rule is vLLM's: a token is kept when
the mass of the tokens ranked above it is below p, so the most likely token is always kept. The
sampling that follows (vLLM's per-request seeded Gumbel argmax) is unchanged, so every sample is still
drawn from its own seed; only a token whose cumulative mass lies within float32 rounding of p can be
decided differently from the sort's summation order.

Selecting 1,024 candidates was itself 5% of a step (12 ms of 32 rows, against 5 ms for 64), so each row
is first tried with the `QUICK` largest. That pass settles a row only when its answer is provably the
1,024-candidate one: the nucleus ends inside the 64, and not inside a run of tied logits (bfloat16
logits tie often; which of a tied run is ranked first is `topk`'s choice, and a nucleus boundary inside
the run would make that choice decide the mask). The masked logits, hence every sample, are then the
same as with 1,024 candidates alone; the other rows take the 1,024 pass as before.
"""

from __future__ import annotations

from typing import Any

QUICK = 64  # the first pass's candidates: the nucleus at temperature 0.8, top-p 0.95 is usually smaller
PREFIX = 1024  # the second pass's; rows whose nucleus is larger go to vLLM's sort


def _candidates(logits: Any, lse: Any, p: Any, size: int) -> tuple[Any, Any, Any, Any]:
    """The `size` largest logits of each row (descending) and their indices, which of them the nucleus
    keeps (a prefix: a token is kept while the mass ranked above it is below p), and whether they hold
    the whole nucleus."""
    values, index = logits.topk(size, dim=-1)
    probs = (values.float() - lse).exp()
    above = probs.cumsum(dim=-1) - probs  # mass of the tokens ranked above each candidate
    p_col = p.to(probs.dtype).unsqueeze(1)
    kept = above < p_col
    covered = (above[:, -1] + probs[:, -1]) >= p_col[:, 0]
    return values, index, kept, covered


def _write(logits: Any, rows: Any, values: Any, index: Any, kept: Any) -> None:
    """Mask `rows` (a boolean per row) of `logits` in place: their kept candidates stay, everything else
    is -inf. Row by row: indexing a (rows, 151,936) tensor by a mask, or copying rows in by number, cost
    more than the top-k itself (10-20 ms a step against 4)."""
    import torch

    inf = -float("inf")
    for row in rows.nonzero().flatten().tolist():
        logits[row].fill_(inf).scatter_(0, index[row], torch.where(kept[row], values[row], inf))


def apply_top_p_prefix(logits: Any, k: Any, p: Any, fallback: Any) -> Any:
    """`fallback(logits, k, p)` is vLLM's sort-based masking, used for top-k and for rows whose `PREFIX`
    largest logits hold less than p of the mass. Returns the masked logits (updated in place)."""
    import torch

    if p is None or k is not None or logits.shape[-1] <= PREFIX:
        return fallback(logits, k, p)
    lse = torch.logsumexp(logits.float(), dim=-1, keepdim=True)
    values, index, kept, _ = _candidates(logits, lse, p, QUICK)
    ends = kept.sum(dim=1, keepdim=True).clamp(1, QUICK - 1)  # the first candidate not kept
    tie_at_end = (values.gather(1, ends - 1) == values.gather(1, ends)).squeeze(1)
    settled = ~kept[:, -1] & ~tie_at_end
    _write(logits, settled, values, index, kept)
    if bool(settled.all()):
        return logits
    rest = (~settled).nonzero().squeeze(1)
    rows = logits[rest]
    values, index, kept, covered = _candidates(rows, lse[rest], p[rest], PREFIX)
    _write(rows, covered, values, index, kept)
    if not bool(covered.all()):
        rows[~covered] = fallback(rows[~covered], None, p[rest][~covered])  # a boolean index is already a copy
    logits[rest] = rows
    return logits


def install() -> str:
    """Make this process's vLLM sampler use `apply_top_p_prefix` (the engine and its worker must run in
    this process: `VLLMEngine` on CPU uses vLLM's in-process executor). Returns the sampler's name, for
    the manifest and the generation cache key: the quick first pass changes no sample, so not the name."""
    from vllm.v1.sample.ops import topk_topp_sampler as sampler

    if not getattr(sampler.apply_top_k_top_p, "utscale_prefix", False):
        original = sampler.apply_top_k_top_p

        def patched(logits: Any, k: Any, p: Any) -> Any:
            return apply_top_p_prefix(logits, k, p, original)

        patched.utscale_prefix = True  # type: ignore[attr-defined]
        sampler.apply_top_k_top_p = patched
    return f"top-p from the {PREFIX} largest logits (exact; vLLM's sort where they hold less than p)"
