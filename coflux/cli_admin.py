"""`coflux tokens create|list|revoke` (the server's service tokens) and `coflux manifests
inspect|archive` (the modules registered in a workspace), over the server's HTTP API.

Layer: the command line, on cli_base.py and cli_http.py.
"""

from __future__ import annotations

import argparse
import json
import time

from . import config
from .cli_base import arguments, make_api, parse_tags
from .cli_http import CommandError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: the CLI starts lighter
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def _patterns(values: list[str] | None) -> list[str] | None:
    """`--workspaces "prod/*" --workspaces staging` or `--workspaces "prod/*,staging"`."""
    if not values:
        return None
    patterns = [p.strip() for value in values for p in value.split(",")]
    if not all(patterns):
        raise CommandError(f"--workspaces {','.join(values)!r}: expected workspace names or patterns, e.g. 'prod/*'")
    return patterns


def cmd_tokens_create(args: argparse.Namespace) -> int:
    payload = {"name": args.name, "workspaces": _patterns(args.workspaces),
               "tags": parse_tags(args.tags, "--tag"), "may_ship_code": args.allow_code}
    with make_api(args) as api:
        created = api.post("tokens", payload)
    if args.output == "json":
        print(json.dumps(created, indent=2))
        return 0
    print(created["token"])
    import sys

    print(f"token {created['id']} ({created['name']}): shown once, keep it now"
          + (f"; limited to {', '.join(created['workspaces'])}" if created.get("workspaces") else ""),
          file=sys.stderr)
    return 0


def _scope(token: dict) -> str:
    return ", ".join(token["workspaces"]) if token.get("workspaces") is not None else "all workspaces"


def cmd_tokens_list(args: argparse.Namespace) -> int:
    with make_api(args) as api:
        tokens = api.get("tokens")["tokens"]
    if args.output == "json":
        print(json.dumps(tokens, indent=2))
        return 0
    for token in tokens:
        state = "revoked " + time.strftime("%Y-%m-%d %H:%M", time.localtime(token["revoked_at"])) \
            if token.get("revoked_at") else "active"
        tags = " ".join(f"{k}:{v}" for k, values in (token.get("tags") or {}).items() for v in values)
        print(f"{token['id']}  {token['name']}  {_scope(token)}  {state}"
              + (f"  tags {tags}" if tags else "") + ("  may ship code" if token.get("may_ship_code") else "")
              + (f"  created by {token['created_by']}" if token.get("created_by") else ""))
    return 0


def cmd_tokens_revoke(args: argparse.Namespace) -> int:
    with make_api(args) as api:
        for token_id in args.ids:
            revoked = api.post(f"tokens/{token_id}/revoke")
            print(f"revoked {revoked['id']} ({revoked['name']})")
    return 0


def cmd_manifests_inspect(args: argparse.Namespace) -> int:
    workspace = config.workspace(args.workspace)
    with make_api(args) as api:
        manifests = api.get("manifests", workspace=workspace)
    if args.output == "json":
        print(json.dumps(manifests, indent=2))
        return 0
    if not manifests["modules"]:
        print(f"no modules registered in workspace {workspace}")
    for module in manifests["modules"]:
        hosts = f"hosted by {', '.join(module['hosts'])}" if module["hosted"] else "no connected worker hosts it"
        print(f"{module['module']}  ({hosts})")
        for workflow in module["workflows"]:
            print(f"  {workflow['name']}" + ("" if workflow["hosts"] else "  (not hosted)"))
    return 0


def cmd_manifests_archive(args: argparse.Namespace) -> int:
    workspace = config.workspace(args.workspace)
    with make_api(args) as api:
        archived = api.post("manifests/archive", {"module": args.module, "workspace": workspace})
    print(f"archived {archived['module']} in workspace {archived['workspace']} ({archived['workflows']} workflow(s)); "
          "a worker that registers it again brings it back")
    return 0


def add_commands(sub: Any, connection_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    tokens = sub.add_parser("tokens", help="service tokens: create, list, revoke").add_subparsers(
        dest="tokens_command", required=True)
    p = tokens.add_parser("create", help="create a service token (printed once)", populate=arguments(
        connection_flags,
        ("--name", {"required": True, "help": "who or what holds it (recorded as who did what)"}),
        ("--workspaces", {"action": "append", "metavar": "PATTERNS",
                          "help": "limit it to these workspaces (names or patterns such as 'prod/*'; "
                                  "repeatable or comma-separated; default: every workspace)"}),
        ("--tag", {"dest": "tags", "action": "append", "metavar": "KEY:VALUE",
                   "help": "a tag its holder has (matched against a prompt's requires); repeatable"}),
        ("--allow-code", {"action": "store_true",
                          "help": "let its holder ship code to workers (off by default)"}),
        ("-o", "--output", {"choices": ["text", "json"], "default": "text"})))
    p.set_defaults(fn=cmd_tokens_create)
    p = tokens.add_parser("list", help="list service tokens (never the tokens themselves)", populate=arguments(
        connection_flags, ("-o", "--output", {"choices": ["text", "json"], "default": "text"})))
    p.set_defaults(fn=cmd_tokens_list)
    p = tokens.add_parser("revoke", help="revoke tokens: refused from now on, their connections closed",
                          populate=arguments(connection_flags, ("ids", {"nargs": "+", "metavar": "ID"})))
    p.set_defaults(fn=cmd_tokens_revoke)
    manifests = sub.add_parser("manifests", help="registered modules and workflows").add_subparsers(
        dest="manifests_command", required=True)
    p = manifests.add_parser("inspect", help="list the registered modules and workflows, and which workers host them",
                             populate=arguments(connection_flags,
                                                ("-o", "--output", {"choices": ["text", "json"], "default": "text"})))
    p.set_defaults(fn=cmd_manifests_inspect)
    p = manifests.add_parser("archive", help="take a module's workflows out of the lists (until a worker registers "
                                             "it again)",
                             populate=arguments(connection_flags, ("module", {"metavar": "MODULE"})))
    p.set_defaults(fn=cmd_manifests_archive)
