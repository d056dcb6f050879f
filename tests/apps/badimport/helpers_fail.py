"""Fails at import because a helper module it imports raises a RuntimeError."""

import coflux as cf
from badimport import _broken_helper  # noqa: F401


@cf.workflow()
def never() -> int:
    return 1
