"""The inventory from the management plane: enrichment from ARM, full syncs, the reconcile timer."""
