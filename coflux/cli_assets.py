"""`coflux assets inspect ASSET_OR_RUN [--match GLOB] [-o json]`, `coflux assets download ASSET
[--to DIR] [--match GLOB] [--force]` and `coflux blobs get KEY [-o FILE]`: over the server's HTTP
API, without opening a WebSocket.

Layer: the command line, on cli_http.py (blobs and assets for the downloads).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys

from . import config
from .cli_http import CommandError, plain_http

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
    if args.match is not None:  # only the entries whose path matches (assets without any are left out)
        assets = [{**item, "entries": [e for e in item["entries"] if fnmatch.fnmatchcase(e["path"], args.match)]}
                  for item in assets]
        if target.startswith("R"):
            assets = [item for item in assets if item["entries"]]
    if args.output == "json":
        print(json.dumps(assets if target.startswith("R") else assets[0], indent=2))
        return 0
    if not assets:
        print(f"run {target} has no assets" + (f" with entries matching {args.match!r}" if args.match else ""))
    for item in assets:
        name = f"  {item['name']}" if item.get("name") else ""
        print(f"asset {item['id']}{name}  from {item['execution']}  {item['count']} file(s), {_size(item['size'])}"
              + (f"  ({len(item['entries'])} matching {args.match!r})" if args.match is not None else ""))
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
        existing = [path for _, path in targets if path.exists() or path.is_symlink()]
        if existing and not args.force:  # nothing written: overwriting takes --force
            print(f"coflux: {existing[0]} exists" + (f" (and {len(existing) - 1} more of the asset's files)"
                                                      if len(existing) > 1 else "")
                  + "; not overwriting without --force", file=sys.stderr)
            return 1
        for entry, path in targets:
            client.download(entry["blob"], str(path))
            print(path)
    except (BlobError, ValueError) as exc:
        print(f"coflux: {exc}", file=sys.stderr)
        return 1
    return 0


def _looks_binary(head: bytes) -> bool:
    """Whether the start of a blob is not text a terminal shows: a NUL byte, or not UTF-8 (a
    character cut at the end of `head` aside)."""
    if b"\0" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(head) - 3 or exc.reason != "unexpected end of data"
    return False


@plain_http
def cmd_blobs_get(args: argparse.Namespace) -> int:
    import hashlib

    from .blobs import CHUNK, BlobError, check_key

    try:
        key = check_key(args.key)
    except BlobError as exc:
        raise CommandError(str(exc)) from None
    client = _blob_client(args)
    try:
        if args.output_file is not None:
            size = client.download(key, args.output_file)  # checked against the key, then renamed into place
            print(f"{args.output_file}: {size} bytes", file=sys.stderr)
            return 0
        stream = client.open_stream(key)
    except BlobError as exc:
        raise CommandError(f"no blob {key}" if "HTTP 404" in str(exc) else str(exc)) from None
    out = sys.stdout.buffer
    digest = hashlib.sha256()
    try:
        head = stream.read(8192)
        if sys.stdout.isatty() and _looks_binary(head):
            raise CommandError(f"blob {key} is binary: not writing it to a terminal (use -o FILE, or redirect "
                               "stdout)")
        chunk = head
        while chunk:
            digest.update(chunk)
            out.write(chunk)
            chunk = stream.read(CHUNK)
        out.flush()
    finally:
        stream.close()
    if digest.hexdigest() != key:
        print(f"coflux: blob {key} came back with different content (sha256 {digest.hexdigest()})",
              file=sys.stderr)
        return 1
    return 0


def add_commands(sub: Any, connection_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    assets = sub.add_parser("assets", help="inspect and download assets").add_subparsers(
        dest="assets_command", required=True)
    p = assets.add_parser("inspect", help="show an asset (ASSET) or the assets of a run (RUN)")
    connection_flags(p)
    p.add_argument("-o", "--output", choices=["text", "json"], default="text")
    p.add_argument("target", metavar="ASSET_OR_RUN")
    p.add_argument("--match", metavar="GLOB", help="only entries whose path matches this glob")
    p.set_defaults(fn=cmd_assets_inspect)
    p = assets.add_parser("download", help="download an asset's files")
    connection_flags(p)
    p.add_argument("asset", metavar="ASSET")
    p.add_argument("--to", default=".", metavar="DIR", help="directory to write to (default: the current one)")
    p.add_argument("--match", metavar="GLOB", help="only entries whose path matches this glob")
    p.add_argument("--force", action="store_true", help="overwrite files that exist (refused without it)")
    p.set_defaults(fn=cmd_assets_download)
    blobs = sub.add_parser("blobs", help="read the blob store").add_subparsers(dest="blobs_command", required=True)
    p = blobs.add_parser("get", help="write a blob (a large value, an asset's file) to stdout or a file")
    connection_flags(p)
    p.add_argument("key", metavar="KEY", help="the blob's key (sha256, 64 hex characters)")
    p.add_argument("-o", "--output", dest="output_file", metavar="FILE",
                   help="write it to FILE (checked against its key first) instead of stdout")
    p.set_defaults(fn=cmd_blobs_get)
