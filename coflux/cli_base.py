"""What the command line's modules share: options added when a command is parsed, the
connection flags, and making the plain-HTTP API or the WebSocket client a command talks to.

Layer: the command line's base, under cli.py, cli_observe.py and cli_assets.py (which import it
and never each other, but cli.py, which builds the parser from their commands).
"""

from __future__ import annotations

from . import config
from .cli_http import Api, CommandError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: the CLI starts lighter
if TYPE_CHECKING:
    import argparse
    from typing import Any


def arguments(*adders: Any) -> Any:
    """A `populate` for the command line's parsers: the command's arguments are added when the
    command is the one parsed (or its help shown), so a start-up builds the options of one
    command, not all. Each adder is a function of the parser, or a tuple of positional and
    keyword arguments of an `add_argument` call (dict last)."""
    def populate(p: argparse.ArgumentParser) -> None:
        for adder in adders:
            if callable(adder):
                adder(p)
            else:
                *names, options = adder
                p.add_argument(*names, **options)
    return populate


def connection_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", help="server URL (env COFLUX_SERVER; default http://127.0.0.1:7777/)")
    parser.add_argument("--token", help="access token (env COFLUX_TOKEN)")
    parser.add_argument("--workspace", help="workspace name (env COFLUX_WORKSPACE; default 'default')")


def parse_tags(values: list[str] | None, flag: str) -> dict[str, list[str]]:
    """Tags given as KEY:VALUE, repeatable (`coflux worker --provides/--accepts`, `coflux submit
    --requires`): key -> values in the order given; a bare KEY stands for any value ("true").
    A spelling that is not KEY or KEY:VALUE (an empty key or value, `=`, a space) is refused."""
    import re

    word = re.compile(r"[^\s:=,]+")
    tags: dict[str, list[str]] = {}
    for item in values or []:
        key, sep, value = item.partition(":")
        if not word.fullmatch(key) or (sep and not word.fullmatch(value)):
            raise CommandError(f"{flag} {item!r}: expected KEY:VALUE (or KEY for any value), e.g. gpu:A100")
        found = tags.setdefault(key, [])
        if (value or "true") not in found:
            found.append(value or "true")
    return tags


def make_api(args: argparse.Namespace) -> Api:
    """The server's JSON routes over plain HTTP: for commands that need no WebSocket."""
    return Api(config.server_url(args.server), config.token(args.token))


def make_client(args: argparse.Namespace) -> Any:
    """The WebSocket client (coflux.client.Client), for commands that wait or change something."""
    from .client import Client

    configure_logging(args.verbose)  # the connection logs its reconnects
    return Client(config.server_url(args.server), config.token(args.token),
                  workspace=config.workspace(args.workspace))


def configure_logging(verbose: bool) -> None:
    import logging

    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
