"""`coflux pools ...`: define a workspace's pools and watch what they launch.

Layer: the command line, on cli_base.py; talks to the server with pools_api.py (HTTP)."""

from __future__ import annotations

import sys

from . import config
from .cli_base import arguments, connection_flags
from .cli_http import CommandError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any


def _api(args: argparse.Namespace) -> Any:
    from .pools_api import PoolsApi

    return PoolsApi(config.server_url(args.server), config.token(args.token), config.workspace(args.workspace))


def _call(fn: Any, *a: Any, **kw: Any) -> Any:
    from .pools_api import PoolsError

    try:
        return fn(*a, **kw)
    except PoolsError as exc:
        raise CommandError(str(exc)) from None


def _settings(values: list[str] | None) -> dict[str, str]:
    settings: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CommandError(f"--set {item!r}: expected KEY=VALUE (e.g. directory=/srv/app, env.TOKEN=x)")
        settings[key] = value
    return settings


def _tags(values: list[str] | None, flag: str) -> dict[str, list[str]]:
    """KEY:VALUE[,VALUE...] (repeatable); a bare KEY: any value."""
    from .cli_base import parse_tags

    split = [f"{item.partition(':')[0]}:{v}" if ":" in item else item
             for item in values or [] for v in (item.partition(":")[2].split(",") if ":" in item else [""])]
    return parse_tags(split, flag)


def _tag_text(tags: dict) -> str:
    return " ".join(f"{k}:{','.join(v)}" for k, v in tags.items()) or "-"


def _print_pool(pool: dict) -> None:
    print(f"{pool['name']}  ({pool['type']}, {'enabled' if pool['enabled'] else 'disabled'})")
    print(f"  modules:  {' '.join(pool['modules'])}")
    print(f"  provides: {_tag_text(pool['provides'])}")
    print(f"  accepts:  {_tag_text(pool['accepts'])}")
    for key, value in sorted(pool["config"].items()):
        if key == "env":
            for name, text in sorted(value.items()):
                print(f"  env.{name} = {text}")
        else:
            print(f"  {key} = {value}")
    if pool.get("last_error"):
        print(f"  last launch failed: {pool['last_error']}")


def cmd_create(args: argparse.Namespace) -> int:
    pool = _call(_api(args).create, args.name, args.type, set=_settings(args.set), modules=args.modules or [],
                 provides=_tags(args.provides, "--provides"), accepts=_tags(args.accepts, "--accepts"))
    print(f"created pool {pool['name']} ({pool['type']})")
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    if args.provides and args.no_provides or args.accepts and args.no_accepts:
        raise CommandError("give --provides or --no-provides (--accepts or --no-accepts), not both")
    provides: Any = {} if args.no_provides else _tags(args.provides, "--provides") if args.provides else ...
    accepts: Any = {} if args.no_accepts else _tags(args.accepts, "--accepts") if args.accepts else ...
    pool = _call(_api(args).update, args.name, set=_settings(args.set), unset=args.unset or [],
                 modules=args.modules, provides=provides, accepts=accepts)
    print(f"updated pool {pool['name']}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    pools = _call(_api(args).list)
    if not pools:
        print("no pools")
    for pool in pools:
        state = "enabled" if pool["enabled"] else "disabled"
        print(f"{pool['name']:<20} {pool['type']:<11} {state:<9} {pool['active_launches']} launched  "
              f"{' '.join(pool['modules'])}")
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    _print_pool(_call(_api(args).get, args.name))
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    _call(_api(args).delete, args.name)
    print(f"deleted pool {args.name}")
    return 0


def cmd_enable(args: argparse.Namespace) -> int:
    _call(_api(args).enable, args.name)
    print(f"enabled pool {args.name}")
    return 0


def cmd_disable(args: argparse.Namespace) -> int:
    _call(_api(args).disable, args.name)
    print(f"disabled pool {args.name}: its workers drain and stop; nothing new is launched")
    return 0


def _launch_line(launch: dict) -> str:
    import time

    started = time.strftime("%H:%M:%S", time.localtime(launch["created_at"]))
    code = f"exit {launch['exit_code']}" if launch.get("exit_code") is not None else ""
    parts = [launch["id"], f"{launch['state']:<10}", started, launch.get("session") or "-", code,
             launch.get("error") or ""]
    return "  ".join(p for p in parts if p)


def cmd_launches(args: argparse.Namespace) -> int:
    import time

    api = _api(args)
    seen: dict[str, str] = {}
    while True:
        launches = _call(api.launches, args.name)
        for launch in reversed(launches):
            line = _launch_line(launch)
            if seen.get(launch["id"]) != line:
                seen[launch["id"]] = line
                print(line, flush=True)
                if launch.get("log_tail") and launch["state"] in ("failed", "exited", "lost") and args.logs:
                    print("    " + launch["log_tail"].rstrip().replace("\n", "\n    "))
        if not args.watch:
            if not launches:
                print(f"pool {args.name} has launched no worker")
            return 0
        time.sleep(1.0)


def cmd_export(args: argparse.Namespace) -> int:
    import tomli_w

    pools = _call(_api(args).export)
    if args.only:
        missing = set(args.only) - {p["name"] for p in pools}
        if missing:
            raise CommandError(f"no pool named {sorted(missing)[0]!r}")
        pools = [p for p in pools if p["name"] in args.only]
    document = {"pools": {p.pop("name"): p for p in pools}}
    text = tomli_w.dumps(document)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
        print(f"exported {len(pools)} pool(s) to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    import tomllib

    try:
        with open(args.file, "rb") as f:
            document = tomllib.load(f)
    except OSError as exc:
        raise CommandError(f"cannot read {args.file}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CommandError(f"{args.file} is not TOML: {exc}") from None
    table = document.get("pools")
    if not isinstance(table, dict):
        raise CommandError(f"{args.file}: expected [pools.NAME] tables")
    pools = [{"name": name, **entry} for name, entry in table.items() if isinstance(entry, dict)]
    names = _call(_api(args).import_, pools)
    print(f"imported {len(names)} pool(s): {', '.join(names)}")
    return 0


def add_commands(sub: Any) -> None:
    pools = sub.add_parser("pools", help="pools: workers the server launches for a workspace").add_subparsers(
        dest="pools_command", required=True)
    tag_help = "KEY:VALUE[,VALUE] (repeatable)"
    p = pools.add_parser("create", help="create a pool", populate=arguments(
        connection_flags, ("name", {}),
        ("--type", {"required": True, "choices": ["process", "docker", "kubernetes"], "help": "launcher type"}),
        ("--set", {"action": "append", "metavar": "KEY=VALUE",
                   "help": "a launcher field (directory=..., image=..., env.NAME=..., maxWorkers=2, idleTimeout=60, acceptCode=true)"}),
        ("--modules", "-m", {"nargs": "+", "action": "extend",
                             "help": "modules to host (required unless --set acceptCode=true)"}),
        ("--provides", {"action": "append", "metavar": "KEY:VALUE", "help": f"what its workers provide: {tag_help}"}),
        ("--accepts", {"action": "append", "metavar": "KEY:VALUE",
                       "help": f"take only work that requires these: {tag_help}"})))
    p.set_defaults(fn=cmd_create)
    p = pools.add_parser("update", help="change a pool", populate=arguments(
        connection_flags, ("name", {}),
        ("--set", {"action": "append", "metavar": "KEY=VALUE", "help": "set a field"}),
        ("--unset", {"action": "append", "metavar": "KEY", "help": "remove a field"}),
        ("--modules", "-m", {"nargs": "+", "action": "extend", "help": "modules to host (replaces them)"}),
        ("--provides", {"action": "append", "metavar": "KEY:VALUE", "help": "replace what its workers provide"}),
        ("--no-provides", {"action": "store_true", "help": "clear provides"}),
        ("--accepts", {"action": "append", "metavar": "KEY:VALUE", "help": "replace what it accepts"}),
        ("--no-accepts", {"action": "store_true", "help": "clear accepts"})))
    p.set_defaults(fn=cmd_update)
    for name, fn, text in (("get", cmd_get, "show a pool's configuration"), ("delete", cmd_delete, "delete a pool"),
                           ("disable", cmd_disable, "disable a pool (its workers drain; nothing new is launched)"),
                           ("enable", cmd_enable, "enable a disabled pool")):
        p = pools.add_parser(name, help=text, populate=arguments(connection_flags, ("name", {})))
        p.set_defaults(fn=fn)
    p = pools.add_parser("list", help="list pools", populate=arguments(connection_flags))
    p.set_defaults(fn=cmd_list)
    p = pools.add_parser("launches", help="the workers a pool launched", populate=arguments(
        connection_flags, ("name", {}),
        ("--watch", {"action": "store_true", "help": "keep showing changes"}),
        ("--logs", {"action": "store_true", "help": "show the log tail of ended launches"})))
    p.set_defaults(fn=cmd_launches)
    p = pools.add_parser("export", help="export pools as TOML", populate=arguments(
        connection_flags, ("-o", "--output", {"metavar": "FILE", "help": "write to FILE (default: stdout)"}),
        ("--only", {"action": "append", "metavar": "NAME", "help": "only this pool (repeatable)"})))
    p.set_defaults(fn=cmd_export)
    p = pools.add_parser("import", help="create or replace pools from a TOML file", populate=arguments(
        connection_flags, ("file", {})))
    p.set_defaults(fn=cmd_import)
