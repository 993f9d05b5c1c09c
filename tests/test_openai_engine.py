"""The OpenAI-compatible engine without a server: retries, then a recorded error status, never a crash.
(Its test against a real vLLM server is in test_engines_real.py, which needs vLLM.)"""

from __future__ import annotations

import socket

from utscale.engines import Request, SamplingConfig
from utscale.engines.openai_engine import OpenAIEngine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_openai_engine_retries_then_records_an_error():
    engine = OpenAIEngine(f"http://127.0.0.1:{free_port()}/v1", "qwen", retries=2, backoff_s=0.01)
    out = engine.generate([Request("T", 0, (("user", "hi"),), SamplingConfig(max_tokens=8), 1)])[0]
    assert out.finish_reason.startswith("error: ConnectError") and out.text == ""
    assert out.completion_tokens == 0
