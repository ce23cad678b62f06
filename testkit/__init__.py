"""Real components for tests and benchmarks (a git server, a registry, the service as a
process), shared by ``tests/`` and ``bench/``; neither imports the other."""
