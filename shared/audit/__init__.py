"""The Activity Log capability: audit records read from the archive (through shared.logread) or handed over by the
backfill, folded and written beside each resource's history; the join of audit records with history when reading."""
