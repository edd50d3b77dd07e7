"""The web dashboard: static pages that call the public HTTP API (/v1) like any other client."""
