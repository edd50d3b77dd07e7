"""What a warm worker has imported before any job reaches it.

The local executor's fork server imports this module once (see executors/warm.py); every job's
worker is then forked from that process, so the seconds torch, transformers, trl and peft take
to import are paid at server start, not between `POST /v1/fine_tuning/jobs` and the first step.
Only imports belong here: no torch op may run before the fork (a thread pool started in the
parent does not survive into the child).
"""

from __future__ import annotations

import datasets  # noqa: F401
import peft  # noqa: F401
import torch  # noqa: F401

# transformers and trl import their submodules lazily, on first attribute access: name what
# the recipes use, or the import (trl's trainers pull in wandb when it is installed: seconds)
# happens after the fork, in every job.
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer  # noqa: F401
from trl import DPOConfig, DPOTrainer, GRPOConfig, GRPOTrainer, SFTConfig, SFTTrainer  # noqa: F401

import polytune.data.tokens  # noqa: F401
import polytune.training.callback  # noqa: F401
import polytune.training.recipes  # noqa: F401
import polytune.training.recipes.dpo  # noqa: F401
import polytune.training.recipes.grpo  # noqa: F401
import polytune.training.recipes.sft  # noqa: F401
import polytune.training.runner  # noqa: F401
import polytune.store.worker  # noqa: F401
import polytune.training.train  # noqa: F401
