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
"""

from __future__ import annotations

from typing import Any

PREFIX = 1024  # candidates per row; the nucleus at temperature 0.8, top-p 0.95 is far smaller


def apply_top_p_prefix(logits: Any, k: Any, p: Any, fallback: Any) -> Any:
    """`fallback(logits, k, p)` is vLLM's sort-based masking, used for top-k and for rows whose `PREFIX`
    largest logits hold less than p of the mass. Returns the masked logits (updated in place)."""
    import torch

    if p is None or k is not None or logits.shape[-1] <= PREFIX:
        return fallback(logits, k, p)
    values, index = logits.topk(PREFIX, dim=-1)  # descending
    lse = torch.logsumexp(logits.float(), dim=-1, keepdim=True)
    probs = (values.float() - lse).exp()
    above = probs.cumsum(dim=-1) - probs  # mass of the tokens ranked above each candidate
    p_col = p.to(probs.dtype).unsqueeze(1)
    covered = (above[:, -1:] + probs[:, -1:]) >= p_col  # the prefix holds the whole nucleus
    kept = torch.where(above < p_col, values, torch.full_like(values, -float("inf")))
    masked = torch.full_like(logits, -float("inf")).scatter_(1, index, kept)
    rows = covered.squeeze(1)
    if bool(rows.all()):
        return logits.copy_(masked)
    logits[rows] = masked[rows]
    rest = ~rows
    logits[rest] = fallback(logits[rest].clone(), None, p[rest])
    return logits


def install() -> str:
    """Make this process's vLLM sampler use `apply_top_p_prefix` (the engine and its worker must run in
    this process: `VLLMEngine` on CPU uses vLLM's in-process executor). Returns the sampler's name, for
    the manifest and the generation cache key."""
    from vllm.v1.sample.ops import topk_topp_sampler as sampler

    if not getattr(sampler.apply_top_k_top_p, "utscale_prefix", False):
        original = sampler.apply_top_k_top_p

        def patched(logits: Any, k: Any, p: Any) -> Any:
            return apply_top_p_prefix(logits, k, p, original)

        patched.utscale_prefix = True  # type: ignore[attr-defined]
        sampler.apply_top_k_top_p = patched
    return f"top-p from the {PREFIX} largest logits (exact; vLLM's sort where they hold less than p)"
