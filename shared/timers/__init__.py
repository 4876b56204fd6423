"""Work a clock starts: the flag sweeps and the retention purge."""
