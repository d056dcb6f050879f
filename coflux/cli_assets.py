"""`coflux assets inspect ASSET_OR_RUN [-o json]` and `coflux assets download ASSET [--to DIR]
[--match GLOB]`: over the server's HTTP API, without opening a WebSocket.

Layer: the command line, on cli_http.py (blobs and assets for the downloads).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys

from . import config
from .cli_http import plain_http

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: the CLI starts lighter
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def _blob_client(args: argparse.Namespace) -> Any:
    from .blobs import BlobClient

    return BlobClient(config.server_url(args.server), config.token(args.token))


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


@plain_http
def cmd_assets_inspect(args: argparse.Namespace) -> int:
    from .blobs import BlobError

    client = _blob_client(args)
    target = args.target
    try:
        if target.startswith("R"):
            assets = client.api_get(f"runs/{target}/assets")["assets"]
        else:
            assets = [client.api_get(f"assets/{target}")]
    except BlobError as exc:
        print(f"coflux: {exc}", file=sys.stderr)
        return 1
    if args.output == "json":
        print(json.dumps(assets if target.startswith("R") else assets[0], indent=2))
        return 0
    if not assets:
        print(f"run {target} has no assets")
    for item in assets:
        name = f"  {item['name']}" if item.get("name") else ""
        print(f"asset {item['id']}{name}  from {item['execution']}  {item['count']} file(s), {_size(item['size'])}")
        for entry in item["entries"]:
            kind = (entry.get("metadata") or {}).get("type", "")
            print(f"  {entry['path']}  {_size(entry['size'])}  {kind}  blob {entry['blob'][:12]}")
    return 0


@plain_http
def cmd_assets_download(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .assets import restore_path
    from .blobs import BlobError

    client = _blob_client(args)
    to = Path(args.to)
    try:
        item = client.api_get(f"assets/{args.asset}")
        entries = [e for e in item["entries"] if args.match is None or fnmatch.fnmatchcase(e["path"], args.match)]
        if not entries:
            print(f"coflux: asset {args.asset} has no entries" + (f" matching {args.match!r}" if args.match else ""),
                  file=sys.stderr)
            return 1
        # Every target is checked before anything is written: an entry path that would land
        # outside --to (`..`, a symlink out of it) refuses the whole download.
        targets = [(e, restore_path(to, e["path"])) for e in entries]
        for entry, path in targets:
            client.download(entry["blob"], str(path))
            print(path)
    except (BlobError, ValueError) as exc:
        print(f"coflux: {exc}", file=sys.stderr)
        return 1
    return 0


def add_commands(sub: Any, connection_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    assets = sub.add_parser("assets", help="inspect and download assets").add_subparsers(
        dest="assets_command", required=True)
    p = assets.add_parser("inspect", help="show an asset (ASSET) or the assets of a run (RUN)")
    connection_flags(p)
    p.add_argument("-o", "--output", choices=["text", "json"], default="text")
    p.add_argument("target", metavar="ASSET_OR_RUN")
    p.set_defaults(fn=cmd_assets_inspect)
    p = assets.add_parser("download", help="download an asset's files")
    connection_flags(p)
    p.add_argument("asset", metavar="ASSET")
    p.add_argument("--to", default=".", metavar="DIR", help="directory to write to (default: the current one)")
    p.add_argument("--match", metavar="GLOB", help="only entries whose path matches this glob")
    p.set_defaults(fn=cmd_assets_download)
