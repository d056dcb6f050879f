"""The submit-time argument check on wire values: which forms are checked as what JSON, which are
passed on unchecked, and how a refusal names the argument."""

from __future__ import annotations

import datetime as dt

import pytest

from coflux import serialization
from coflux_server.errors import BadRequest
from coflux_server.orchestrator.arguments import check_arguments

FLOATS = {"name": "values", "annotation": "list[float]", "schema": {"type": "array", "items": {"type": "number"}}}
DAY = {"name": "day", "annotation": "date", "schema": {"type": "string", "format": "date"}}
PAIR = {"name": "pair", "annotation": "tuple[int, str]", "schema": {
    "type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "minItems": 2, "maxItems": 2}}
N = {"name": "n", "annotation": "int", "schema": {"type": "integer"}, "default": {"v": None}}


def refused(parameters, args, kwargs=None) -> str:
    with pytest.raises(BadRequest) as info:
        check_arguments("m/w", parameters, args, kwargs or {})
    return str(info.value)


def test_plain_json_is_checked_and_the_refusal_names_the_item():
    check_arguments("m/w", [FLOATS], [{"v": [1, 2.5]}], {})
    assert refused([FLOATS], [{"v": [0.1, "x"]}]) == \
        "m/w(): argument 'values[1]': 'x' is not of type 'number' (expected list[float])"
    assert "argument 'values'" in refused([FLOATS], [], {"values": {"v": "abc"}})


def test_typed_wire_forms_are_checked_as_their_json():
    check_arguments("m/w", [DAY], [serialization.encode(dt.date(2024, 2, 29))], {})
    assert "is not a 'date'" in refused([DAY], [{"v": "2024-02-30"}])
    check_arguments("m/w", [PAIR], [serialization.encode((1, "a"))], {})
    assert "argument 'pair[1]'" in refused([PAIR], [serialization.encode((1, 2))])


def test_what_has_no_json_form_or_is_the_default_passes_unchecked():
    import fractions

    pickled = serialization.encode(fractions.Fraction(1, 3))
    assert pickled["v"]["$"] == "pickle"
    check_arguments("m/w", [FLOATS], [pickled], {})
    check_arguments("m/w", [FLOATS], [{"v": {"$": "blob", "format": "json", "key": "k", "size": 9}}], {})
    check_arguments("m/w", [FLOATS], [{"v": {"$": "ref", "i": 0}, "refs": [{"type": "execution", "id": "R:1:1"}]}], {})
    check_arguments("m/w", [N], [{"v": None}], {})  # `n: int = None`: the default itself is fine
    assert "argument 'n'" in refused([N], [{"v": "3"}])
    check_arguments("m/w", [{"name": "x"}], [{"v": {"anything": [1, "two"]}}], {})  # no hint, no schema
