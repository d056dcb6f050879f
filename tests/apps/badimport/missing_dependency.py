"""Fails at import: it imports a package that is not installed."""

import coflux_test_package_that_does_not_exist  # noqa: F401

import coflux as cf


@cf.workflow()
def never() -> int:
    return 1
