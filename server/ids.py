"""External identifiers: runs `R` + random letters, steps `<run>:<n>`, executions `<run>:<n>:<attempt>`."""

import secrets

# No look-alike characters (0/O, 1/l/I), so ids can be read aloud and typed.
_ALPHABET = "bcdfghjkmnpqrstvwxyzBCDFGHJKLMNPQRSTVWXYZ23456789"


def random_id(prefix: str, length: int = 6) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def step_id(run_id: str, number: int) -> str:
    return f"{run_id}:{number}"


def execution_id(run_id: str, number: int, attempt: int) -> str:
    return f"{run_id}:{number}:{attempt}"


def parse_execution_id(value: str) -> tuple[str, int, int]:
    """Split `R:n:a` into its parts; raises ValueError on anything else."""
    parts = value.split(":")
    if len(parts) != 3 or not parts[0].startswith("R"):
        raise ValueError(f"not an execution id: {value!r} (expected RUN:STEP:ATTEMPT)")
    return parts[0], int(parts[1]), int(parts[2])


def run_of(execution_or_step_id: str) -> str:
    return execution_or_step_id.split(":", 1)[0]


def input_id(run_id: str, number: int) -> str:
    """A prompt raised in a run: `<run>:i<n>` (never taken for an execution or a step)."""
    return f"{run_id}:i{number}"


def is_input_id(value: str) -> bool:
    parts = value.split(":")
    return len(parts) == 2 and parts[0].startswith("R") and parts[1][:1] == "i" and parts[1][1:].isdigit()
