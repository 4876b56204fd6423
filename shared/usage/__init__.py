"""Usage from the logs: a reader of positions and lines, the gateway logs' tally, their ingest and roll-ups."""
