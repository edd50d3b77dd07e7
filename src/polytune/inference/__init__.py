"""Inference: where fine-tuned models are found and (later) served."""
