"""Greedy answers from a saved model folder, full or peft adapter, through its chat template."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_for_generation(model_dir: Path | str):
    """(model, tokenizer) in eval mode; an adapter folder loads its base model first."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = Path(model_dir)
    if (model_dir / "adapter_config.json").is_file():
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(model_dir)
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir)
    return model.eval(), AutoTokenizer.from_pretrained(model_dir)


def generate_answers(
    model_dir: Path | str, conversations: list[list[dict[str, Any]]], max_new_tokens: int = 64
) -> list[str]:
    """The greedy reply to each conversation, special tokens removed, ends stripped."""
    import torch

    model, tokenizer = load_for_generation(model_dir)
    answers = []
    with torch.inference_mode():
        # One conversation at a time: no padding, so the answer cannot depend on batch-mates.
        for messages in conversations:
            inputs = tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
            )
            output = model.generate(
                **inputs,
                do_sample=False,
                max_new_tokens=max_new_tokens,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
            new_tokens = output[0, inputs["input_ids"].shape[1] :]
            answers.append(tokenizer.decode(new_tokens, skip_special_tokens=True).strip())
    return answers
