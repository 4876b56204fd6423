"""Table Storage and its in-memory twin: keys, the repository port, the adapters, the row writer, the alert outbox, status rows."""
