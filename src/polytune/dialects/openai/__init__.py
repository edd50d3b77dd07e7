"""OpenAI's fine-tuning, files, uploads and models APIs (also what Nebius and TrueFoundry speak)."""
