"""The memory planner against figures computed by hand for Llama-3.1 8B and 70B shapes."""

from __future__ import annotations

import pytest

from polytune.catalog import memory
from polytune.catalog.memory import GiB, ModelDims, Shape

LLAMA_8B = {
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "intermediate_size": 14336,
    "vocab_size": 128256,
    "tie_word_embeddings": False,
}
LLAMA_70B = {
    "hidden_size": 8192,
    "num_hidden_layers": 80,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "intermediate_size": 28672,
    "vocab_size": 128256,
    "tie_word_embeddings": False,
}


def test_parameter_counts_match_the_published_sizes():
    d8 = ModelDims.from_config(LLAMA_8B)
    # Per layer: q 4096*4096 + k,v 2*4096*1024 + o 4096*4096 = 41,943,040; MLP 3*4096*14336 = 176,160,768;
    # two norms 8,192 -> 218,112,000; x32 = 6,979,584,000; embeddings + lm_head 2*128256*4096 = 1,050,673,152;
    # final norm 4,096.
    assert d8.n_params == 8_030_261_248
    # Per layer: attention 2*8192^2 + 2*8192*1024 = 150,994,944; MLP 3*8192*28672 = 704,643,072; norms 16,384
    # -> 855,654,400 x 80 = 68,452,352,000; embeddings 2*128256*8192 = 2,101,346,304; final norm 8,192.
    assert ModelDims.from_config(LLAMA_70B).n_params == 70_553_706_496
    # LoRA r16 on all seven linears: 16*(8192 + 5120 + 5120 + 8192 + 3*18432) = 1,310,720 per layer, x32.
    assert d8.lora_params(16) == 41_943_040
    assert d8.lora_params(16, ["q_proj", "v_proj"]) == 32 * 16 * (8192 + 5120)


def test_8b_full_fine_tune_state_and_activations():
    d8 = ModelDims.from_config(LLAMA_8B)
    est = memory.estimate(d8, Shape(adapter="full", context_length=4096, micro_batch=1, gradient_checkpointing=True))
    # fp32 master weights 4 B, gradients 4 B, AdamW moments 8 B per parameter.
    assert (est.weights, est.gradients, est.optimizer) == (32_121_044_992, 32_121_044_992, 64_242_089_984)
    assert est.reference == 0
    # Checkpointing: 32 layer inputs * 4096 * 2 B = 262,144; one layer recomputed (6*4096 + 2*1024 +
    # 4*14336) * 2 B = 167,936; logits 128256 * (2 + 8) = 1,282,560 -> 1,712,640 B per token; x4096 tokens.
    assert est.activations == 1_712_640 * 4096
    assert est.overhead == GiB
    assert est.total == 128_484_179_968 + 7_014_973_440 + GiB
    # Without checkpointing every layer keeps its 167,936 B per token: 32 * 167,936 + 1,282,560.
    no_ckpt = memory.estimate(d8, Shape(adapter="full", context_length=4096, gradient_checkpointing=False))
    assert no_ckpt.activations == (32 * 167_936 + 1_282_560) * 4096


def test_8b_lora_qlora_and_dpo():
    d8 = ModelDims.from_config(LLAMA_8B)
    lora = memory.estimate(d8, Shape(adapter="lora", context_length=2048))
    # bf16 base 2 B/parameter + fp32 adapter 4 B; adapter gradients 4 B and moments 8 B.
    assert lora.weights == 8_030_261_248 * 2 + 41_943_040 * 4
    assert (lora.gradients, lora.optimizer) == (41_943_040 * 4, 41_943_040 * 8)
    qlora = memory.estimate(d8, Shape(adapter="qlora", context_length=2048))
    # NF4 on the 32 * 218,103,808 linear weights (0.5 B + 1.0156/64 B of block constants), bf16 for the
    # embeddings, lm_head and norms (8,030,261,248 - 6,979,321,856 = 1,050,939,392 parameters).
    linear = 32 * 218_103_808
    assert qlora.weights == int(linear * (0.5 + (1 + 4 / 256) / 64) + (8_030_261_248 - linear) * 2) + 41_943_040 * 4
    assert 5.4 * GiB < qlora.weights < 5.5 * GiB  # 8B in 4 bits with bf16 embeddings: ~5.9 GB
    # Full-fine-tune DPO adds a bf16 reference model and puts chosen + rejected through the model.
    dpo = memory.estimate(d8, Shape(adapter="full", method="dpo", context_length=1024))
    assert dpo.reference == 8_030_261_248 * 2
    assert dpo.activations == 1_712_640 * 2048
    assert memory.estimate(d8, Shape(adapter="lora", method="dpo")).reference == 0


def test_70b_under_fsdp_and_qlora():
    d70 = ModelDims.from_config(LLAMA_70B)
    full = memory.estimate(d70, Shape(adapter="full", devices=8, fsdp=True, context_length=1024))
    # 16 B x 70,553,706,496 = 1,128,859,303,936 B split over 8 devices, plus two whole layers in bf16.
    assert full.weights + full.gradients + full.optimizer == 1_128_859_303_936 // 8 + 2 * 855_654_400 * 2
    ddp = memory.estimate(d70, Shape(adapter="full", devices=8, fsdp=False))
    assert ddp.weights == 70_553_706_496 * 4  # DDP keeps everything on every device
    # QLoRA 70B on one 80 GiB device fits (the well-known single-GPU 70B recipe); a full fine-tune
    # does not fit 8 of them.
    assert memory.fits(d70, Shape(adapter="qlora", context_length=1024), 80 * GiB)
    assert not memory.fits(d70, Shape(adapter="full", devices=8, fsdp=True, context_length=1024), 80 * GiB)
    assert memory.best_sharding(d70, Shape(adapter="lora", devices=8), 80 * GiB).fsdp


def test_micro_batch_from_the_token_budget_and_accumulation_from_the_rest():
    d8 = ModelDims.from_config(LLAMA_8B)
    shape = Shape(adapter="lora", context_length=2048, devices=1)
    fixed = memory.estimate(d8, shape.__class__(**{**shape.__dict__, "micro_batch": 0})).total
    per_seq = 1_712_640 * 2048
    b = memory.batching(d8, shape, 80 * GiB, global_batch=64)
    assert b.micro_batch == (int(80 * GiB * 0.9) - fixed) // per_seq
    assert b.micro_batch * b.accumulation >= 64 and b.micro_batch * (b.accumulation - 1) < 64
    # Two devices: each takes half the global batch; a small global batch is the micro-batch itself.
    assert memory.batching(d8, Shape(adapter="lora", devices=2), 80 * GiB, global_batch=4) == memory.Batching(2, 1)


@pytest.mark.parametrize("config", [{}, {"hidden_size": 8}, {"model_type": "flux"}])
def test_a_config_it_does_not_know_gives_no_estimate(config):
    assert ModelDims.from_config(config) is None
