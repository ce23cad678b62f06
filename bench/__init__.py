"""Benchmarks for binderhub-service: ``.venv/bin/python -m bench.run`` (``make bench``).

See bench/README.md for what is measured and how.
"""
