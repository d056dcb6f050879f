"""Orchestration rules, one small module per option: keys, cache hits, retries, waiting."""
