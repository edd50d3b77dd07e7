"""polytune: a self-hostable fine-tuning service that speaks five providers' APIs."""

__version__ = "0.1.0"
