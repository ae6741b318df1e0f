"""Moodtale: a story that changes as its reader reacts."""

__version__ = "0.1.0"
