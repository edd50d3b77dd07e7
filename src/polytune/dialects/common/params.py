"""Upper bounds of the integer query and path parameters every dialect takes, so a number no
database column can hold is a 4xx at the edge (and shows in the OpenAPI document)."""

from __future__ import annotations

MAX_LIMIT = 10_000  # items on one page
MAX_OFFSET = 1_000_000_000  # items skipped: far more than any list holds, far less than SQL's limit
MAX_PAGE = 1_000_000  # Oxen's page numbers (times a page_size of at most 1000 stays within SQL's limit)
MAX_ID = 2**31 - 1  # integer primary keys are 32-bit on PostgreSQL
