"""The launchers: how a worker is started, watched and stopped for each pool type."""
