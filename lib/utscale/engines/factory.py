"""Build the engine a run's parameters ask for."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from utscale.engines.base import Engine


def make_engine(config: Mapping[str, Any], role: str, problems: pd.DataFrame | None = None,
                log_file: Path | None = None) -> Engine:
    """role: "policy" (solutions) or "test" (unit tests). `problems` lets a replay check that its file
    belongs to the run's benchmark; `log_file` receives a local engine's logs (not the notebook's cells)."""
    prefix = "POLICY" if role == "policy" else "TEST"
    kind, model = config[f"{prefix}_ENGINE"], config[f"{prefix}_MODEL"]
    if kind == "replay":
        from utscale.engines.replay_engine import ReplayEngine
        from utscale.models import token_counter

        tokenizer = config.get("REPLAY_TOKENIZER", "")
        entry_points = None if problems is None else dict(zip(problems.task_id, problems.entry_point))
        return ReplayEngine(config[f"{prefix}_REPLAY_PATH"], model, config["REPLAY_FORMAT"],
                            "solutions" if role == "policy" else "unit_tests",
                            count_tokens=token_counter(tokenizer) if tokenizer else None, entry_points=entry_points)
    if kind == "openai":
        from utscale.engines.openai_engine import OpenAIEngine

        return OpenAIEngine(config["OPENAI_BASE_URL"], model, concurrency=config["CONCURRENCY"])
    if kind == "vllm":
        from utscale.engines.vllm_engine import VLLMEngine
        from utscale.models import resolve_model

        return VLLMEngine(resolve_model(model), seed=config["SEED"], log_file=log_file)
    raise ValueError(f"unknown engine {kind!r}")
