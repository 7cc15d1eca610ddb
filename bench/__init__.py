"""Keyward's benchmarks: ``make bench`` (see README.md). Never imported by the product or tests."""


class BenchError(Exception):
    """A condition that stops the bench with a message rather than a traceback."""
