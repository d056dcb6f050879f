"""The examples of defining-workflows.txt, plus small targets the tests need.

Each workflow returns something a test can compare, and every one of them also works when called
directly outside coflux (test_local.py calls them without a server).
"""

import os
import time

import coflux as cf

# ---------------------------------------------------------------- the documentation's examples


@cf.task()
def fetch_data(url: str):
    return {"url": url, "length": len(url)}


@cf.workflow()
def process(url: str):
    """
    Fetches data from `url` and processes it.
    """
    data = fetch_data(url)
    return describe(data)


@cf.task()
def describe(data: dict) -> str:
    return f"{data['url']} has {data['length']} characters"


# Another module's task, referenced without importing it (hosted by the worker for other.workflows).
@cf.stub("other.workflows")
def random_int(max: int) -> int:
    return 4  # Dummy value for testing


@cf.workflow()
def roll_die():
    # The documentation writes `random_int(6).result()`, but calling a target already returns
    # its result (python-adapter-reference: "target(...) ... Equivalent to
    # target.submit(...).result()"), so the submit form is the one that works everywhere.
    if random_int.submit(6).result() == 6:
        print("You won")
        return "won"
    else:
        print("You lost")
        return "lost"


@cf.workflow()
def roll_many(times: int) -> list:
    """Calls the stub directly (blocking) and through submit."""
    direct = [random_int(6) for _ in range(times)]
    submitted = [random_int.submit(6) for _ in range(times)]
    return direct + [e.result() for e in submitted]


@cf.stub("other.workflows", name="whoami")
def other_whoami() -> dict:
    return {"module": "stub body", "pid": os.getpid()}


@cf.stub("other.workflows", type="workflow")
def other_flow(x: int) -> int:
    return -1


@cf.workflow()
def where_is_other() -> dict:
    return {"here": os.getpid(), "other": other_whoami()["pid"], "other_flow": other_flow(5)}


# ---------------------------------------------------------------- tasks calling tasks


@cf.task()
def add(a: int, b: int) -> int:
    return a + b


@cf.task()
def add_three(a: int, b: int, c: int) -> int:
    return add(add(a, b), c)


@cf.workflow()
def nested(a: int, b: int, c: int) -> int:
    return add_three(a, b, c)


# ---------------------------------------------------------------- tasks calling workflows


@cf.workflow()
def child(x: int) -> int:
    return x * 10


@cf.task()
def start_child(x: int) -> int:
    return child(x)


@cf.workflow()
def parent(x: int) -> int:
    return start_child(x) + 1


# ---------------------------------------------------------------- execution handles


@cf.task()
def square(x: int) -> int:
    return x * x


@cf.task()
def total(executions: list) -> int:
    return sum(e.result() for e in executions)


@cf.task()
def plus_one(execution) -> int:
    return execution.result() + 1


@cf.workflow()
def handles(n: int) -> dict:
    squares = [square.submit(i) for i in range(n)]
    return {
        "total": total(squares),  # a list of handles as an argument
        "plus_one": plus_one(squares[-1]),  # one handle as an argument
        "poll": squares[0].poll(10),
        "types": sorted({type(e).__name__ for e in squares}),
    }


@cf.workflow()
def returns_execution(x: int):
    return square.submit(x)


@cf.task()
def make_execution(x: int):
    return square.submit(x)


@cf.workflow()
def unwrap(x: int) -> dict:
    inner = make_execution(x)  # a task's result that is itself a handle
    return {"is_execution": isinstance(inner, cf.Execution), "value": inner.result()}


# ---------------------------------------------------------------- fan-out


@cf.task()
def inc(i: int) -> int:
    return i + 1


@cf.workflow()
def fan_out(n: int = 1000) -> int:
    executions = [inc.submit(i) for i in range(n)]
    return sum(e.result() for e in executions)


# ---------------------------------------------------------------- keyword arguments


@cf.task()
def greet(name: str, greeting: str = "Hello", punctuation: str = "!") -> str:
    return f"{greeting}, {name}{punctuation}"


@cf.workflow()
def greetings(name: str, greeting: str = "Hi") -> list:
    return [
        greet(name),
        greet(name, greeting=greeting),
        greet(greeting="Hey", name=name, punctuation="?"),
        greet.submit(name=name, punctuation=".").result(),
    ]


@cf.workflow()
def bad_call() -> str:
    return greet(nickname="x")  # wrong keyword: a TypeError in the caller


# ---------------------------------------------------------------- errors


class PaymentDeclined(Exception):
    pass


@cf.task()
def divide(a: int, b: int) -> float:
    return a / b


@cf.workflow()
def divide_flow(a: int, b: int) -> float:
    return divide(a, b)


@cf.task()
def decline(amount: int):
    raise PaymentDeclined(f"card declined for {amount}")


@cf.task()
def lookup(key: str):
    return {"a": 1}[key]


@cf.workflow()
def catches() -> dict:
    caught = {}
    try:
        divide(1, 0)
    except ZeroDivisionError as e:
        caught["zero"] = {
            "execution_error": isinstance(e, cf.ExecutionError),
            "type": getattr(e, "error_type", None),  # ExecutionError attributes (None locally)
            "message": str(e),
            "traceback": getattr(e, "remote_traceback", None),
        }
    try:
        decline(5)
    except PaymentDeclined as e:
        caught["declined"] = {"execution_error": isinstance(e, cf.ExecutionError), "message": str(e)}
    try:
        lookup.submit("zz").result()
    except KeyError as e:
        caught["key"] = {"execution_error": isinstance(e, cf.ExecutionError), "type": getattr(e, "error_type", None)}
    try:
        divide(2, 0)
    except cf.ExecutionError as e:  # only inside coflux: outside, the plain exception propagates
        caught["as_execution_error"] = isinstance(e, ZeroDivisionError)
    except ZeroDivisionError:
        caught["as_execution_error"] = None
    return caught


@cf.workflow()
def uncaught() -> None:
    decline(7)


# ---------------------------------------------------------------- the worker pool

_calls = 0


@cf.task()
def whoami() -> dict:
    global _calls
    _calls += 1
    return {"pid": os.getpid(), "calls": _calls}


@cf.workflow()
def pool_info(n: int) -> list:
    return [whoami() for _ in range(n)]


# ---------------------------------------------------------------- values


@cf.workflow()
def values(value):
    return {"value": value, "type": type(value).__name__}


@cf.workflow()
def identity(value):
    return value


# ---------------------------------------------------------------- gated work (durability tests)


def _wait_for(path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout} s")
        time.sleep(0.02)


@cf.task()
def gate(path: str, value: int) -> int:
    """Says it started (creates `path`.started), blocks until `path` exists, says it is done
    (`path`.done) and returns value."""
    with open(path + ".started", "w"):
        pass
    _wait_for(path, 120)
    with open(path + ".done", "w"):
        pass
    return value


@cf.workflow()
def gated(path: str, n: int, via_submit: bool = False) -> dict:
    before = [inc(i) for i in range(n)]
    released = gate.submit(path, 100).result() if via_submit else gate(path, 100)
    after = [inc.submit(i) for i in range(n)]
    return {"before": sum(before), "gate": released, "after": sum(e.result() for e in after)}


@cf.workflow()
def grouped(n: int) -> list:
    """Children submitted inside `cf.group` blocks are tagged with their group."""
    with cf.group("evens"):
        evens = [inc.submit(i) for i in range(0, n, 2)]
    with cf.group("odds"):
        odds = [inc.submit(i) for i in range(1, n, 2)]
    ungrouped = inc.submit(100)
    return [e.result() for e in evens + odds] + [ungrouped.result()]


@cf.workflow()
def big(n: int) -> str:
    """Returns a string of n characters (for the message size limits)."""
    return "x" * n
