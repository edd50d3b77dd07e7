"""The worker side of the training primitives (Tinker API): a LoRA model kept in memory between
calls, its losses, and its saved state. Reached only through executors/primitives.py."""
