"""Names of the transformers stack, imported under one process-wide lock.

transformers is a lazy module: `from transformers import AutoTokenizer` imports the submodule
that defines the name on first use. Two threads doing that at once (the server's start-up
warm-up and a job's validation, or two validation threads) can see the submodule half
imported and fail with "ImportError: cannot import name 'AutoTokenizer'". Every server-side
import of these names goes through here, so the first one finishes before any other starts;
once imported, a name is only a dictionary lookup away and the lock costs nothing.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()


def from_transformers(*names: str) -> tuple[Any, ...]:
    """The named attributes of `transformers`, imported under the lock."""
    with _lock:
        import transformers

        return tuple(getattr(transformers, name) for name in names)
