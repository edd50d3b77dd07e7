"""The `polytune` command."""
