"""Fails at import with a KeyError raised two frames deep in the user's own code."""

import coflux as cf

SETTINGS: dict[str, str] = {}


def load_setting(name: str) -> str:
    return SETTINGS[name]


def connect() -> str:
    return load_setting("database_url")


DATABASE = connect()


@cf.workflow()
def never() -> int:
    return 1
