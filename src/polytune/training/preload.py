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

import gc  # noqa: E402 - after the imports it is about

# Everything imported above lives as long as the fork server and every worker forked from it.
# Frozen out of the collector's sight, it is never walked by a worker's full collections, which
# otherwise cost ~0.3 s each here (550,000 objects) and wrote into every inherited object's
# header, copying the fork server's heap into the worker page by page (~38,000 page faults on
# the first one). What the gc module's documentation advises for a process that forks workers.
gc.freeze()
