"""The orchestrator: one scheduling thread that owns all writes, woken by events and timers."""

from .core import Orchestrator

__all__ = ["Orchestrator"]
