"""Helpers for testing code that asks people (`cf.Prompt`) outside coflux: a plain script or a
unit test has nobody to ask, so a prompt raises there unless the test answered it first.

    from coflux import testing
    testing.answer(approve, None)        # an approval: approved
    testing.answer(label, Label(...))    # or the JSON a person would send
    testing.dismiss(approve)             # .result() raises cf.InputDismissed
    testing.clear()

An answer holds for the prompt and its `with_*` copies (it is matched by template).

Layer: a handle module, beside prompts.py (whose prompts it answers).
"""

from __future__ import annotations

from typing import Any

from .prompts import Prompt, _test_answers

__all__ = ["answer", "clear", "dismiss"]


def answer(prompt: Prompt, value: Any = None) -> None:
    """Outside coflux, `prompt` (and its copies) is answered with `value` from now on."""
    if not isinstance(prompt, Prompt):
        raise TypeError(f"answer() takes a cf.Prompt, not {type(prompt).__name__}")
    _test_answers[prompt.template] = ("value", value)


def dismiss(prompt: Prompt) -> None:
    """Outside coflux, `prompt` is dismissed from now on."""
    if not isinstance(prompt, Prompt):
        raise TypeError(f"dismiss() takes a cf.Prompt, not {type(prompt).__name__}")
    _test_answers[prompt.template] = ("dismissed", None)


def clear() -> None:
    """Forget every answer given."""
    _test_answers.clear()
