"""The coflux orchestration server: a plain Tornado application with no Jupyter imports."""
