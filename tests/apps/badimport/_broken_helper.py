"""Imported by helpers_fail: raises while being imported."""


def check_environment() -> None:
    raise RuntimeError("the helper needs COFLUX_TEST_NEVER_SET")


check_environment()
