"""Table-driven planner checks against the public cases, from real config.json files."""

from __future__ import annotations

from pathlib import Path

import pytest

from trtllm_oci import planner
from trtllm_oci.build_options import BuildLimits, KvCacheDtype, Parallelism, Quantization, QuantizationSpec
from trtllm_oci.model_facts import load_model_facts
from trtllm_oci.shapes import load_catalog

CONFIGS = Path(__file__).parent.parent / "data" / "hf_configs"


def facts(name: str):
    return load_model_facts(CONFIGS / f"{name}.json")


def run(model: str, shape: str, quant: str, tp: int = 1, pp: int = 1, kv: str = "auto", **limits) -> planner.Plan:
    return planner.plan(
        facts(model),
        load_catalog().get(shape),
        QuantizationSpec(method=Quantization(quant), kv_cache_dtype=KvCacheDtype(kv)),
        Parallelism(tp=tp, pp=pp),
        BuildLimits(**limits),
    )


@pytest.mark.parametrize(
    ("model", "shape", "quant", "tp", "pp", "fits", "weights_gib"),
    [
        ("llama-2-13b-hf", "VM.GPU.A10.1", "none", 1, 1, False, (24.0, 24.5)),
        ("llama-2-13b-hf", "VM.GPU.A10.1", "int4_wo", 1, 1, True, (6.5, 7.5)),
        ("llama-2-13b-hf", "VM.GPU.A10.2", "none", 2, 1, True, (12.0, 12.5)),
        ("llama-2-70b-hf", "BM.GPU.H100.8", "none", 2, 1, True, (63.5, 65.0)),
        ("llama-2-70b-hf", "BM.GPU.H100.8", "fp8", 1, 2, True, (31.5, 33.0)),
        ("mixtral-8x7b-v0.1", "BM.GPU4.8", "none", 8, 1, True, (10.5, 11.5)),
        ("mixtral-8x7b-v0.1", "VM.GPU.A10.2", "none", 2, 1, False, (42.0, 45.0)),
        ("llama-2-7b-hf", "VM.GPU.A10.1", "none", 1, 1, True, (12.3, 12.8)),
    ],
)
def test_public_cases(model, shape, quant, tp, pp, fits, weights_gib) -> None:
    result = run(model, shape, quant, tp, pp)
    assert result.fits is fits, result.reasons
    low, high = weights_gib
    assert low <= result.per_gpu.weights_gib <= high
    if fits:
        assert result.per_gpu.total_gib <= result.per_gpu.memory_gib
        assert result.max_concurrent_sequences >= 1
        assert result.reasons[0].startswith("fits:")


def test_verdict_explains_why_in_words() -> None:
    result = run("llama-2-13b-hf", "VM.GPU.A10.1", "none")
    assert any("weights alone need 24." in r and "22.5 GiB of one A10" in r for r in result.reasons)


def test_kv_cache_per_token_matches_the_formula_and_splits_under_tp_and_pp() -> None:
    f = facts("llama-2-70b-hf")  # 80 layers × 8 KV heads × 128 head_dim
    assert planner.kv_bytes_per_token_per_gpu(f, KvCacheDtype.AUTO, 1, 1) == 2 * 80 * 8 * 128 * 2
    assert planner.kv_bytes_per_token_per_gpu(f, KvCacheDtype.AUTO, 4, 1) == 2 * 80 * 2 * 128 * 2
    assert planner.kv_bytes_per_token_per_gpu(f, KvCacheDtype.FP8, 1, 2) == 2 * 40 * 8 * 128 * 1
    # More TP ranks than KV heads: each rank keeps one (replicated) head.
    assert planner.kv_bytes_per_token_per_gpu(f, KvCacheDtype.AUTO, 16, 1) == 2 * 80 * 1 * 128 * 2


def test_pipeline_stages_carry_the_embedding_or_the_lm_head_not_both() -> None:
    f = facts("llama-2-7b-hf")
    one = planner.per_gpu_weight_bytes(f, Quantization.NONE, 1, 1)
    two = planner.per_gpu_weight_bytes(f, Quantization.NONE, 1, 2)
    assert two == pytest.approx((one - f.embedding_params * 2 - f.lm_head_params * 2) / 2 + f.embedding_params * 2)


def test_longer_sequences_leave_room_for_fewer_sequences() -> None:
    short = run("llama-2-7b-hf", "BM.GPU.H100.8", "none", max_seq_len=2048, max_input_len=1024)
    long = run("llama-2-7b-hf", "BM.GPU.H100.8", "none", max_seq_len=8192, max_input_len=4096)
    # floor(budget / (4·per_seq)) == floor(budget / per_seq) // 4
    assert long.max_concurrent_sequences == short.max_concurrent_sequences // 4 > 0


def test_too_much_parallelism_or_fp8_on_ampere_do_not_fit_and_say_so() -> None:
    too_wide = run("llama-2-7b-hf", "VM.GPU.A10.2", "none", tp=4)
    assert not too_wide.fits and any("tp×pp = 4×1 = 4" in r for r in too_wide.reasons)
    fp8 = run("llama-2-7b-hf", "VM.GPU.A10.2", "fp8")
    assert not fp8.fits and any("FP8" in r for r in fp8.reasons)
    odd = run("llama-2-7b-hf", "BM.GPU.H100.8", "none", tp=8, pp=1)
    assert odd.fits  # 32 heads split 8 ways


def test_candidates_are_sorted_by_price_and_all_fit() -> None:
    found = planner.candidates(facts("llama-2-13b-hf"))
    assert found and all(p.fits for p in found)
    prices = [p.price_per_hour_usd for p in found]
    priced = [p for p in prices if p is not None]
    # A shape the catalog has no price for (BM.GPU.GB200.4) sorts after every priced one, never as free.
    assert priced == sorted(priced) and prices == priced + [None] * (len(prices) - len(priced))
    cheapest = found[0]
    assert cheapest.shape == "VM.GPU.A10.1" and cheapest.quantization is not Quantization.NONE
    # Nothing FP8 on an A10 shape.
    assert not any(p.gpu == "A10" and p.quantization.needs_fp8_hardware for p in found)


def test_alternatives_text_names_feasible_layouts() -> None:
    text = planner.alternatives_text(facts("llama-2-13b-hf"), load_catalog().get("VM.GPU.A10.1"), BuildLimits())
    assert "On VM.GPU.A10.1 these fit:" in text and "int4_wo" in text


# ------------------------------------------------------------------------------ the PyTorch backend


def test_the_pytorch_backend_reserves_cuda_graph_memory_on_top_of_the_engine_runtime() -> None:
    shape, model = load_catalog().get("BM.GPU.H100.8"), facts("llama-2-70b-hf")
    args = (QuantizationSpec(method=Quantization.FP8), Parallelism(tp=2), BuildLimits())
    engine = planner.plan(model, shape, *args)
    eager = planner.plan(model, shape, *args, backend="pytorch")
    reserve = planner.planner_constants()["pytorch_cuda_graph_reserve_gib"]
    assert eager.per_gpu.overhead_gib == pytest.approx(engine.per_gpu.overhead_gib + reserve)
    assert eager.per_gpu.kv_cache_gib <= engine.per_gpu.kv_cache_gib


def test_a_prequantized_checkpoint_is_planned_with_its_real_bytes_per_weight() -> None:
    shape, model = load_catalog().get("BM.GPU.H100.8"), facts("llama-2-70b-hf")
    nominal = planner.plan(model, shape, QuantizationSpec(), Parallelism(tp=2), BuildLimits(), backend="pytorch")
    fp8 = planner.plan(model, shape, QuantizationSpec(), Parallelism(tp=2), BuildLimits(), backend="pytorch",
                       bytes_per_weight=1.0)
    assert fp8.per_gpu.weights_gib < 0.6 * nominal.per_gpu.weights_gib  # linear layers at 1 of 2 bytes


def test_nvfp4_candidates_are_blackwell_shapes_and_only_for_the_pytorch_backend() -> None:
    model = facts("llama-2-70b-hf")
    found = planner.candidates(model, backend="pytorch")
    nvfp4 = [p for p in found if p.quantization is Quantization.NVFP4]
    assert nvfp4 and {p.shape for p in nvfp4} == {"BM.GPU.B200.8", "BM.GPU.GB200.4"}
    assert all(p.quantization in (Quantization.NONE, Quantization.FP8, Quantization.NVFP4, Quantization.INT4_AWQ,
                                  Quantization.W4A8_AWQ) for p in found)
    assert not any(p.quantization is Quantization.NVFP4 for p in planner.candidates(model))


def test_the_unpriced_arm64_gb200_shape_is_a_candidate_shown_with_an_unknown_price() -> None:
    model = facts("llama-2-70b-hf")
    gb200 = [p for p in planner.candidates(model, backend="pytorch") if p.shape == "BM.GPU.GB200.4"]
    assert gb200 and {Quantization.NVFP4, Quantization.FP8} <= {p.quantization for p in gb200}
    assert all(p.price_per_hour_usd is None and p.host_arch == "arm64" for p in gb200)
    text = planner.describe(gb200[0])
    assert text.endswith("tokens, – (arm64 host: the serving image needs a linux/arm64 build)")
    assert "$" not in text
    priced = planner.describe(planner.candidates(model, [load_catalog().get("BM.GPU.H100.8")])[0])
    assert priced.endswith("$80.00/h")
