"""The HTTP surface: turns requests into calls on ``jobs`` and results into responses."""
