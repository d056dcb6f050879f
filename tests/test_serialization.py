"""Values on the wire (coflux/serialization.py): round trips, canonical encoding, references."""

from __future__ import annotations

import base64
import collections
import dataclasses
import datetime as dt
import decimal
import json
import math
import uuid

import pydantic
import pytest

from coflux import serialization as s
from coflux.models import Execution


@dataclasses.dataclass
class Point:
    x: int
    y: int


Pair = collections.namedtuple("Pair", "left right")


def round_trip(value, resolve=None):
    wire = s.encode(value)
    json.loads(json.dumps(wire))  # the wire form is plain JSON
    return s.decode(json.loads(json.dumps(wire)), resolve)


@pytest.mark.parametrize("value", [
    None, True, False, 0, -7, 2**70, 1.5, "", "text ✓", [], [1, [2, [3]]], {}, {"a": {"b": [1, None]}},
])
def test_plain_json_passes_through(value):
    assert s.encode(value) == {"v": value}
    assert round_trip(value) == value


@pytest.mark.parametrize("value", [
    {1: "one", 2: "two"},
    {(1, 2): "tuple key", None: 0, 3.5: "float"},
    {"$": "looks like a wrapper", "other": 1},
    {frozenset({1, 2}): {"nested": {1: [1, 2]}}},
    (1, "a", None),
    (),
    ((1, 2), [3, (4,)]),
    {1, 2, 3},
    set(),
    frozenset({"a", "b"}),
    {(1, 2), (3, 4)},
    dt.datetime(2024, 5, 6, 7, 8, 9, 123456),
    dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    dt.date(2024, 2, 29),
    dt.time(23, 59, 1, 5),
    dt.timedelta(days=2, seconds=3, microseconds=4),
    decimal.Decimal("1.10"),
    decimal.Decimal("-1e-30"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    b"",
    b"\x00\xffbytes",
    Point(1, 2),
    Pair(1, [2, 3]),
    [Point(0, 0), {"p": Point(3, 4)}],
    float("inf"),
    float("-inf"),
])
def test_round_trip(value):
    decoded = round_trip(value)
    assert decoded == value
    assert type(decoded) is type(value)


def test_types_are_preserved_inside_containers():
    value = {"when": dt.date(2020, 1, 1), "ids": {uuid.UUID(int=1)}, "amounts": (decimal.Decimal("2.50"),)}
    decoded = round_trip(value)
    assert decoded == value
    assert isinstance(decoded["ids"], set) and isinstance(decoded["amounts"], tuple)
    assert str(decoded["amounts"][0]) == "2.50"


def test_nan():
    assert math.isnan(round_trip(float("nan")))


def test_bytearray_decodes_as_bytes():
    assert round_trip(bytearray(b"abc")) == b"abc"


def test_decimal_keeps_its_exponent():
    assert str(round_trip(decimal.Decimal("1.000"))) == "1.000"


def test_encoding_is_canonical():
    assert s.encode({3, 1, 2}) == s.encode({2, 3, 1})
    assert s.encode({2: "b", 1: "a"}) == s.encode({1: "a", 2: "b"})
    assert s.encode(frozenset({"x", "y"})) == s.encode(frozenset({"y", "x"}))
    assert s.encode((1, 2)) != s.encode([1, 2])
    assert s.encode({1, 2}) != s.encode(frozenset({1, 2}))


def test_execution_references():
    a = Execution("Rabc:2:1", "myapp.workflows", "square")
    b = Execution("Rabc:3:1", "myapp.workflows", "inc")
    wire = s.encode({"first": a, "both": [a, b], "tuple": (b,)})
    assert [r["id"] for r in wire["refs"]] == ["Rabc:2:1", "Rabc:2:1", "Rabc:3:1", "Rabc:3:1"]
    assert wire["refs"][0] == {"type": "execution", "id": "Rabc:2:1", "module": "myapp.workflows",
                               "target": "square"}
    assert s.execution_refs(wire) == ["Rabc:2:1", "Rabc:2:1", "Rabc:3:1", "Rabc:3:1"]

    resolved = s.decode(json.loads(json.dumps(wire)), lambda ref: ("resolved", ref["id"]))
    assert resolved == {"first": ("resolved", "Rabc:2:1"),
                        "both": [("resolved", "Rabc:2:1"), ("resolved", "Rabc:3:1")],
                        "tuple": (("resolved", "Rabc:3:1"),)}
    # Without a resolver, references decode as their descriptions.
    assert s.decode(wire)["first"] == wire["refs"][0]


def test_execution_handles_round_trip_to_handles():
    from coflux.context import decode_value

    handle = Execution("Rxyz:5:2", "m", "t")
    decoded = decode_value(s.encode([handle]), resolver=None)
    assert isinstance(decoded[0], Execution)
    assert (decoded[0].id, decoded[0].module, decoded[0].target) == ("Rxyz:5:2", "m", "t")
    assert decoded[0] == handle
    assert s.execution_refs(s.encode(1)) == []


def test_to_display():
    wire = s.encode({"t": (1, 2), "s": {3}, "d": {1: "a"}, "b": b"abc", "p": Point(1, 2),
                     "e": Execution("Rq:2:1", "m", "t"), "when": dt.date(2020, 1, 2)})
    assert s.to_display(wire) == {"t": [1, 2], "s": [3], "d": {"1": "a"}, "b": "<3 bytes>",
                                  "p": "<test_serialization.Point>", "e": "<execution Rq:2:1>",
                                  "when": "2020-01-02"}


def test_unserialisable_value_is_a_clear_type_error():
    with pytest.raises(TypeError, match="cannot serialise function"):
        s.encode(lambda: 1)
    with pytest.raises(TypeError, match="cannot serialise"):
        s.encode({"nested": [(lambda: 0)]})


def test_decoding_rejects_non_wire_values():
    with pytest.raises(ValueError, match="not a wire value"):
        s.decode({"value": 1})
    with pytest.raises(ValueError, match="not a wire value"):
        s.decode([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown value type 'nope'"):
        s.decode({"v": {"$": "nope"}})


# ---------------------------------------------------------------------- models and frames


class _Inner(pydantic.BaseModel):
    when: dt.date
    tags: set[str] = set()


class _Model(pydantic.BaseModel):
    name: str
    inner: _Inner
    extra: dict = {}


def test_pydantic_models_travel_as_their_json_and_come_back_as_the_model():
    model = _Model(name="m", inner=_Inner(when=dt.date(2024, 1, 2), tags={"b", "a"}), extra={"$": "dollar"})
    wire = s.encode(model)
    assert wire["v"]["$"] == "pydantic" and wire["v"]["class"].endswith("._Model")
    assert "pickle" not in json.dumps(wire)
    shown = s.to_display(wire)
    assert sorted(shown["inner"].pop("tags")) == ["a", "b"]  # (a set: in its own order)
    assert shown == {"name": "m", "inner": {"when": "2024-01-02"}, "extra": {"$": "dollar"}}
    assert s.decode(wire) == model
    # A consumer without the class still reads the JSON.
    wire["v"]["class"] = "nowhere_to_be_found.Model"
    plain = s.decode(wire)
    assert isinstance(plain, dict) and plain["inner"]["when"] == "2024-01-02" and plain["extra"] == {"$": "dollar"}


def test_dataframes_travel_as_parquet():
    import pandas as pd

    frame = pd.DataFrame({"i": [1, 2, 3], "x": [0.5, 1.5, None], "s": ["a", "b", "c"]}, index=[10, 20, 30])
    wire = s.encode(frame)
    node = wire["v"]
    assert (node["$"], node["format"], node["rows"], node["ncolumns"], node["columns"]) == \
        ("dataframe", "parquet", 3, 3, ["i", "x", "s"])
    assert base64.b64decode(node["b64"])[:4] == b"PAR1"
    assert s.decode(wire).equals(frame)
    assert s.to_display(wire) == "<DataFrame 3 rows x 3 columns: i, x, s>"
    # What Parquet cannot hold (mixed object columns) is still a pickle.
    mixed = pd.DataFrame({"o": [1, "a", decimal.Decimal("1.5")]})
    assert s.encode(mixed)["v"]["$"] == "pickle"
