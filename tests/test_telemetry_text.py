"""Log lines and metric points travel and are stored as JSON text (coflux/telemetry.py encodes,
server/orchestrator/telemetry.py parses): the fast encoder and parser must give exactly what
Python's json gives, also for values they do not handle themselves."""

from __future__ import annotations

import json
import math

from coflux.telemetry import _dumps
from coflux_server.store.jsontext import loads as _loads


def _stdlib(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def test_a_batch_is_encoded_as_the_standard_library_would() -> None:
    lines = [["info", "step {k} of {x} — café", {"k": {"v": 3}, "x": {"v": 0.1 + 0.2}}, 1764612345.123456],
             ["stdout", "tabs\tand\nnewlines \"quoted\" \\ back", None, 1764612345.5]]
    assert _dumps(lines) == (_stdlib(lines), False)
    assert json.loads(_dumps(lines)[0]) == lines


def test_values_the_fast_encoder_refuses_are_encoded_all_the_same() -> None:
    for value in ([["info", None, {"big": {"v": 2 ** 70}}, 1.0]], [["info", "lone \ud800 surrogate", None, 1.0]]):
        assert _dumps(value)[0] == _stdlib(value)


def test_a_flagged_text_keeps_integers_beyond_64_bits_exact_and_nan_is_taken() -> None:
    text = _stdlib([["info", None, {"big": {"v": 2 ** 70}, "small": {"v": 12}}, 1.5]])
    parsed = _loads(text, True)
    assert parsed[0][2]["big"]["v"] == 2 ** 70 and type(parsed[0][2]["big"]["v"]) is int
    assert parsed == json.loads(text)
    assert math.isnan(_loads('[["points", 1.0, NaN]]')[0][2])  # refused later, by the point check


def test_a_text_with_integers_beyond_64_bits_is_flagged_and_read_exactly() -> None:
    text, wide = _dumps([["info", None, {"big": {"v": 2 ** 70}}, 1.0]])
    assert wide and _loads(text, wide)[0][2]["big"]["v"] == 2 ** 70
    assert _dumps([["info", None, {"small": {"v": 2 ** 40}}, 1.0]])[1] is False
