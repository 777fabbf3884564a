"""The ``newswatch`` command line."""
