"""Benchmark functions that return plain dicts; ``scripts/bench.py`` runs them and writes the JSON report."""
