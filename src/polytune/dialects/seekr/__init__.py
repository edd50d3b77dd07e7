"""SeekrFlow's API (the `seekrai` SDK): /v1/flow/... at the server root."""
