"""Use cases. Each service takes the caller's organization and never shows another's objects."""
