"""Build the engine a run's parameters ask for. A new engine is one entry of `ENGINES` (a builder);
`config` takes its allowed values from that table."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from utscale.engines.base import Engine


def _replay(config: Mapping[str, Any], prefix: str, problems: pd.DataFrame | None, log_file: Path | None) -> Engine:
    from utscale.engines.replay_engine import ReplayEngine
    from utscale.models import token_counter

    tokenizer = config.get("REPLAY_TOKENIZER", "")
    entry_points = None if problems is None else dict(zip(problems.task_id, problems.entry_point))
    return ReplayEngine(config[f"{prefix}_REPLAY_PATH"], config[f"{prefix}_MODEL"], config["REPLAY_FORMAT"],
                        "solutions" if prefix == "POLICY" else "unit_tests",
                        count_tokens=token_counter(tokenizer) if tokenizer else None, entry_points=entry_points)


def _openai(config: Mapping[str, Any], prefix: str, problems: pd.DataFrame | None, log_file: Path | None) -> Engine:
    from utscale.engines.openai_engine import OpenAIEngine

    return OpenAIEngine(config["OPENAI_BASE_URL"], config[f"{prefix}_MODEL"], concurrency=config["CONCURRENCY"])


def _vllm(config: Mapping[str, Any], prefix: str, problems: pd.DataFrame | None, log_file: Path | None) -> Engine:
    from utscale.engines.vllm_engine import VLLMEngine
    from utscale.models import resolve_model

    return VLLMEngine(resolve_model(config[f"{prefix}_MODEL"]), seed=config["SEED"], log_file=log_file)


# each builder gets (config, "POLICY" or "TEST", the run's problems or None, a log file or None); the heavy
# engine modules are imported only by the builder that needs them
ENGINES: dict[str, Callable[[Mapping[str, Any], str, pd.DataFrame | None, Path | None], Engine]] = {
    "vllm": _vllm,
    "openai": _openai,
    "replay": _replay,
}


def make_engine(config: Mapping[str, Any], role: str, problems: pd.DataFrame | None = None,
                log_file: Path | None = None) -> Engine:
    """role: "policy" (solutions) or "test" (unit tests). `problems` lets a replay check that its file
    belongs to the run's benchmark; `log_file` receives a local engine's logs (not the notebook's cells)."""
    prefix = "POLICY" if role == "policy" else "TEST"
    kind = config[f"{prefix}_ENGINE"]
    if kind not in ENGINES:
        raise ValueError(f"unknown engine {kind!r}; choose one of {sorted(ENGINES)}")
    return ENGINES[kind](config, prefix, problems, log_file)
