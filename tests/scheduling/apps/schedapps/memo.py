"""memo: within a run, equal calls return the same execution without a new step."""

from __future__ import annotations

import coflux as cf

from .common import count, mark


@cf.task(memo=True)
def memo_all(log: str, x: int) -> int:
    mark(log, f"memo_all {x}")
    return 10 * x


@cf.task(memo=["user_id"])
def profile(log: str, user_id: str, detail: str) -> str:
    mark(log, f"profile {user_id} {detail}")
    return f"{user_id}:{detail}"


@cf.task()
def plain(log: str, x: int) -> int:
    mark(log, f"plain {x}")
    return x


@cf.task(memo=False)
def opt_out(log: str, x: int) -> int:
    mark(log, f"opt_out {x}")
    return x


@cf.task(memo=True)
def memo_fails(log: str, x: int) -> int:
    mark(log, f"memo_fails {x}")
    raise ValueError(f"memo failure {count(log)}")


@cf.workflow()
def same_calls(log: str) -> dict:
    a = memo_all.submit(log, 1)
    b = memo_all.submit(log, 1)  # while `a` is pending
    c = memo_all.submit(log, 2)
    d = memo_all(log, 1)  # the blocking form, after `a` succeeded
    return {"ids": [a.id, b.id, c.id], "values": [a.result(), b.result(), c.result(), d]}


@cf.workflow()
def by_user(log: str) -> dict:
    first = profile.submit(log, "u1", "first")
    second = profile.submit(log, "u1", "second")  # same user_id: memoised, `detail` ignored
    other = profile.submit(log, "u2", "first")
    return {"ids": [first.id, second.id, other.id],
            "values": [first.result(), second.result(), other.result()]}


@cf.workflow(memo=True)
def memo_everything(log: str) -> list:
    return [plain(log, 1), plain(log, 1), plain(log, 2), opt_out(log, 1), opt_out(log, 1)]


@cf.workflow()
def failures(log: str) -> list:
    out = []
    for _ in range(2):
        try:
            memo_fails(log, 1)
        except ValueError as e:
            out.append(str(e))
    return out


@cf.task()
def calls_memo_all(log: str, x: int) -> int:
    return memo_all(log, x)


@cf.workflow()
def across_parents(log: str) -> list:
    """The workflow and one of its tasks make the same memoised call."""
    return [memo_all(log, 5), calls_memo_all(log, 5)]
