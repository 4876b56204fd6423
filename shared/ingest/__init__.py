"""Events into the inventory: the event type -> handler table, the pipeline, replays of files and dead letters."""
