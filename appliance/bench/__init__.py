"""Benchmarks: ``moodtale bench ...``. Figures are measured, never asserted in tests."""
