"""The read side: the questions users ask of the inventory, and the health report."""
