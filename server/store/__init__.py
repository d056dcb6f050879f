"""Storage: SQLAlchemy Core tables, engine setup, migrations and read queries."""

from .engine import create_store_engine
from .schema import metadata

__all__ = ["create_store_engine", "metadata"]
