"""The inventory's rules, pure: kinds, resources, events, times, the merge, flags, details, errors. Standard library only."""
