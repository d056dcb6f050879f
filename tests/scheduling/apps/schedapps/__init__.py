"""Workflow modules for the scheduling tests (one module per option family)."""
