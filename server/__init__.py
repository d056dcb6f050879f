"""The coflux orchestration server: a plain Tornado application with no Jupyter imports.

Installed as the package `coflux_server` (the repository's folder server/, renamed by the wheel
so that it collides with no other module named `server`: pyproject.toml); its modules import
one another relatively, and from the SDK only `coflux.protocol`.
"""
