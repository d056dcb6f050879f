"""Modules that fail while `coflux worker` imports them, each in its own way (tests/test_clean_failures.py)."""
