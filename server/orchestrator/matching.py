"""Which worker may run which execution (requires / provides / accepts)."""

from __future__ import annotations


def merge_requires(run_requires: dict | None, step_requires: dict | None) -> dict[str, list[str]]:
    """Run-level requires under step-level ones; a key with an empty list is removed."""
    merged: dict[str, list[str]] = {}
    for source in (run_requires or {}, step_requires or {}):
        for key, values in source.items():
            merged[key] = list(values)
    return {k: v for k, v in merged.items() if v}


def requires_satisfied(requires: dict[str, list[str]], provides: dict[str, list[str]],
                       accepts: dict[str, list[str]]) -> bool:
    """The worker offers one of the required values for every required key (a required "true"
    matches any offered value)."""
    for key, wanted in requires.items():
        offered = set(provides.get(key, [])) | set(accepts.get(key, []))
        if not offered:
            return False
        if "true" in wanted:
            continue
        if not offered.intersection(wanted):
            return False
    return True


def accepts_satisfied(requires: dict[str, list[str]], accepts: dict[str, list[str]]) -> bool:
    """Every key the worker `accepts` is required (such a worker takes only work that asks for it)."""
    for key, values in accepts.items():
        required = requires.get(key)
        if not required:
            return False
        if "true" in values or "true" in required:
            continue
        if not set(values).intersection(required):
            return False
    return True


def worker_matches(requires: dict[str, list[str]], provides: dict[str, list[str]],
                   accepts: dict[str, list[str]]) -> bool:
    """A worker matches when it satisfies what the execution requires and the execution requires
    what the worker accepts."""
    return requires_satisfied(requires, provides, accepts) and accepts_satisfied(requires, accepts)
