"""A pool's fields: which a launcher type knows, how `--set key=value` text becomes a value,
and how a pool is shown (a secret field never is)."""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import BadRequest

TYPES = ("process", "docker", "kubernetes")

# Fields every launcher type reads (Coflux's "common fields", plus the launch policy).
COMMON = {"concurrency", "maxWorkers", "idleTimeout", "connectTimeout", "drainTimeout", "serverHost",
          "serverSecure", "adapter", "acceptCode"}
FIELDS = {
    "process": {"directory", "python"},
    "docker": {"image", "dockerHost", "network", "volumes", "resources", "python", "workdir"},
    "kubernetes": {"image", "namespace", "apiServer", "token", "caCert", "insecure", "serviceAccount",
                   "imagePullPolicy", "imagePullSecrets", "nodeSelector", "tolerations", "hostAliases",
                   "resources", "labels", "annotations", "activeDeadlineSeconds", "volumes", "volumeMounts"},
}
REQUIRED = {"process": ("directory",), "docker": ("image",), "kubernetes": ("image",)}
SECRET = {"token"}  # stored encrypted (secrets.py), never shown back
INTEGERS = {"concurrency", "maxWorkers", "activeDeadlineSeconds"}
SECONDS = {"idleTimeout", "connectTimeout", "drainTimeout"}
BOOLEANS = {"serverSecure", "insecure", "acceptCode"}
STRUCTURED = {"volumes", "resources", "nodeSelector", "tolerations", "hostAliases", "labels", "annotations",
              "imagePullSecrets", "volumeMounts"}  # JSON text on the command line
DEFAULTS = {"maxWorkers": 4, "idleTimeout": 300.0, "connectTimeout": 60.0, "drainTimeout": 30.0}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise BadRequest(f"a pool name is letters, digits, '_', '.' and '-' (at most 100), not {str(name)[:100]!r}")
    return name


def check_type(kind: Any) -> str:
    if kind not in TYPES:
        raise BadRequest(f"--type must be one of {', '.join(TYPES)}, not {str(kind)[:40]!r}")
    return kind


def _value(key: str, raw: Any) -> Any:
    """A field's value from `--set` text (or JSON from an import), checked."""
    if key in INTEGERS:
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise BadRequest(f"{key} must be an integer, not {str(raw)[:40]!r}") from None
        if not 0 < value <= 100_000 or isinstance(raw, bool):
            raise BadRequest(f"{key} must be from 1 to 100000, not {value}")
        return value
    if key in SECONDS:
        try:
            seconds = float(raw)
        except (TypeError, ValueError):
            raise BadRequest(f"{key} must be a number of seconds, not {str(raw)[:40]!r}") from None
        if not 0 < seconds <= 86400 * 30:
            raise BadRequest(f"{key} must be from 0 to 30 days of seconds, not {raw}")
        return seconds
    if key in BOOLEANS:
        if isinstance(raw, bool):
            return raw
        if str(raw).lower() in ("true", "1", "yes"):
            return True
        if str(raw).lower() in ("false", "0", "no"):
            return False
        raise BadRequest(f"{key} must be true or false, not {str(raw)[:40]!r}")
    if key in STRUCTURED and isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            if key == "imagePullSecrets":
                return [s for s in raw.split(",") if s]
            raise BadRequest(f"{key} must be JSON (e.g. --set '{key}={{...}}'), not {raw[:60]!r}") from None
    if not isinstance(raw, str | int | float | dict | list):
        raise BadRequest(f"{key} has an unusable value")
    return raw


def apply_settings(kind: str, config: dict, settings: dict, unset: list) -> dict:
    """`config` with `settings` ({key: value}, `env.NAME` keys for the environment) applied and
    `unset` keys removed; every key checked against the launcher type."""
    new = json.loads(json.dumps(config))  # a copy
    env = dict(new.get("env") or {})
    for key, raw in settings.items():
        if not isinstance(key, str):
            raise BadRequest("field names are strings")
        if key.startswith("env."):
            name = key[4:]
            if not _ENV_NAME.fullmatch(name):
                raise BadRequest(f"{key}: not an environment variable name")
            env[name] = str(raw)
        elif key == "env" and isinstance(raw, dict):
            for name, value in raw.items():
                if not _ENV_NAME.fullmatch(str(name)):
                    raise BadRequest(f"env.{name}: not an environment variable name")
                env[str(name)] = str(value)
        elif key in COMMON or key in FIELDS[kind]:
            new[key] = _value(key, raw)
        else:
            known = ", ".join(sorted(COMMON | FIELDS[kind] | {"env.NAME"}))
            raise BadRequest(f"{kind} pools have no field {key[:60]!r} (known: {known})")
    for key in unset:
        if not isinstance(key, str):
            raise BadRequest("field names are strings")
        if key.startswith("env."):
            env.pop(key[4:], None)
        else:
            new.pop(key, None)
    if env:
        new["env"] = env
    else:
        new.pop("env", None)
    for key in REQUIRED[kind]:
        if key not in new:
            raise BadRequest(f"a {kind} pool needs --set {key}=...")
    return new


def check_modules(modules: Any, config: dict | None = None) -> list[str]:
    """The pool's modules; none only for a pool whose workers run shipped code alone (acceptCode)."""
    if modules in (None, []) and config and config.get("acceptCode"):
        return []
    if not isinstance(modules, list) or not modules or not all(isinstance(m, str) and m for m in modules):
        raise BadRequest("a pool hosts at least one module (--modules M ...), unless it sets acceptCode=true")
    return list(dict.fromkeys(modules))


def check_tags(tags: Any, what: str) -> dict[str, list[str]]:
    """{key: [values]} from {key: value | [values]} (a bare key stands for any value: "true")."""
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise BadRequest(f"{what} must be an object of key -> values")
    out: dict[str, list[str]] = {}
    for key, values in tags.items():
        values = values if isinstance(values, list) else [values]
        out[str(key)] = [str(v).lower() if isinstance(v, bool) else str(v) for v in values] or ["true"]
    return out


def setting(config: dict, key: str) -> Any:
    return config.get(key, DEFAULTS.get(key))


def public_config(config: dict) -> dict:
    """The config as it may be shown: a secret field says only that it is set."""
    return {k: ("(set)" if k in SECRET else v) for k, v in config.items()}
