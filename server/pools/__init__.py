"""Pools: a workspace's recipes for launching workers, and the launchers that start them.

Layer: beside the orchestrator (which decides when to launch, server/orchestrator/pools.py);
imports nothing of the HTTP side. `config` checks a pool's fields, `secrets` encrypts the
secret ones, `credentials` holds the one-launch credentials, `runner` runs the launchers off
the orchestrator's thread.
"""
