"""Training: the worker entry point, the recipes (one per method), the model catalog."""
