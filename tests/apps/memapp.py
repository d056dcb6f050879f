"""Large and deep values (tests/test_memory.py)."""

import coflux as cf


@cf.task()
def big(i: int, mb: int) -> str:
    return chr(ord("a") + i % 26) * (mb * 1024 * 1024)


@cf.workflow()
def many_big(n: int, mb: int) -> int:
    """n results of `mb` MB each, one after another (the workflow holds one at a time)."""
    return sum(len(big(i, mb)) for i in range(n))


@cf.task()
def deep(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels):
        value = {"x": value}
    return value


@cf.workflow()
def deep_result(levels: int) -> str:
    try:
        deep(levels)
    except cf.ExecutionError as exc:
        return f"{exc.error_type}: {exc}"
    return "ok"
