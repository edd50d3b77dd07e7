"""serving.py's other side: plain transformers `generate`, one prompt after another, as the
loop a user would write; and the long prompt its long-context row sends to both sides."""

from __future__ import annotations

import time
from pathlib import Path

LONG_TOPICS = ["river", "king", "mountain", "harbour", "library", "orchard", "bridge", "market"]


def long_prompt(tokenizer, tokens: int) -> str:
    """A document of about `tokens` tokens (in the model's chat template) and a question on it,
    as a retrieval-augmented request sends: deterministic, different sentence to sentence."""
    sentences, i = [], 0
    question = "\n\nWhich record mentions the orchard first, and what does it say?"

    def length() -> int:
        text = " ".join(sentences) + question
        return prompt_tokens(tokenizer, text)

    while length() < tokens:
        topic, other = LONG_TOPICS[i % len(LONG_TOPICS)], LONG_TOPICS[(3 * i + 1) % len(LONG_TOPICS)]
        sentences.append(f"Record {i}: the {topic} near the {other} was counted {7 * i % 97} times in year {1900 + i}.")
        i += 1
    return " ".join(sentences) + question


def prompt_tokens(tokenizer, text: str) -> int:
    """The tokens of `text` as one user message in the chat template."""
    messages = [{"role": "user", "content": text}]
    return len(tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"])


class FirstToken:
    """A transformers streamer that notes when `generate` hands out its first new token
    (its first `put` is the prompt)."""

    def __init__(self):
        self.puts, self.at = 0, None

    def put(self, value) -> None:
        self.puts += 1
        if self.puts == 2 and self.at is None:
            self.at = time.perf_counter()

    def end(self) -> None:
        pass


class PlainGenerate:
    """Plain transformers: the chat template, then greedy `generate`, one prompt at a time."""

    def __init__(self, model_dir: Path, warm_up: list[str]):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        self.parameters = sum(p.numel() for p in self.model.parameters())
        self.run(4, warm_up)

    def run(self, tokens: int, prompts: list[str]) -> dict:
        """The prompts one after another; tokens, seconds, each request's time to its first
        token counted from the start of the loop, and the texts (to check polytune's)."""
        import torch

        generated, ttfts, texts, counts = 0, [], [], []
        loop_start = time.perf_counter()
        with torch.inference_mode():
            for text in prompts:
                inputs = self.tokenizer.apply_chat_template(
                    [{"role": "user", "content": text}],
                    add_generation_prompt=True,
                    tokenize=True,
                    return_dict=True,
                    return_tensors="pt",
                )
                first = FirstToken()
                out = self.model.generate(
                    **inputs,
                    do_sample=False,
                    max_new_tokens=tokens,
                    streamer=first,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
                ttfts.append((first.at or time.perf_counter()) - loop_start)
                new = out[0, inputs["input_ids"].shape[1] :]
                generated += len(new)
                counts.append(len(new))
                texts.append(self.tokenizer.decode(new, skip_special_tokens=True))
        return {
            "tokens": generated,
            "seconds": time.perf_counter() - loop_start,
            "ttft": sorted(ttfts)[len(ttfts) // 2],
            "texts": texts,
            "counts": counts,
        }
