"""Local tooling: Azurite on a free loopback port, for the demo, the tests and the benchmark."""
