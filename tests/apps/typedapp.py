"""Workflows with typed parameters (their JSON Schemas checked at submit) and tasks that return a
pydantic model and a pandas DataFrame (which travel as JSON and Parquet, not pickles).
Serves tests/test_typed_arguments.py and tests/ui/test_schema_dialog.py."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import Literal, Optional

import pandas as pd
import pydantic

import coflux as cf


class Color(enum.Enum):
    red = "red"
    green = "green"
    blue = "blue"


@dataclasses.dataclass
class Point:
    x: float
    y: float = 0.0


class Settings(pydantic.BaseModel):
    name: str
    points: list[Point]
    scale: float = 1.0
    start: Optional[dt.date] = None  # noqa: UP045 - the typing spelling is what is tested


@cf.workflow
def squares(n: int) -> list[int]:
    """The squares of 0..n-1."""
    return [i * i for i in range(n)]


@cf.workflow
def weighted(values: list[float], weights: dict[str, int] | None = None, color: Color = Color.red,
             mode: Literal["fast", "slow"] = "fast", day: Optional[dt.date] = None) -> dict:  # noqa: UP045
    """Typed arguments of many kinds; returns what arrived, with its Python types."""
    return {"total": sum(values), "weights": weights, "color": color.value, "color_type": type(color).__name__,
            "mode": mode, "day": day.isoformat() if day else None, "day_type": type(day).__name__}


@cf.workflow
def configure(settings: Settings, label: str = "x") -> dict:
    """A pydantic model argument: sent as JSON, received as the model."""
    return {"type": type(settings).__name__, "name": settings.name,
            "points": [type(p).__name__ for p in settings.points], "scale": settings.scale, "label": label}


@cf.workflow
def untyped(value, other=None):
    """No hints: any JSON is accepted, as before schemas."""
    return [value, other]


@cf.task
def make_settings(n: int) -> Settings:
    return Settings(name=f"s{n}", points=[Point(float(i), 1.0) for i in range(n)], start=dt.date(2024, 5, 6))


@cf.task
def make_frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"i": list(range(n)), "square": [i * i for i in range(n)], "label": [f"r{i}" for i in range(n)]})


@cf.task
def describe(settings: Settings, frame: pd.DataFrame) -> dict:
    return {"settings": type(settings).__name__, "points": [type(p).__name__ for p in settings.points],
            "start": type(settings.start).__name__, "frame": type(frame).__name__, "rows": len(frame),
            "square_sum": int(frame["square"].sum()), "columns": list(frame.columns)}


@cf.workflow
def typed_values(n: int = 3) -> dict:
    """A model and a DataFrame from one task to another."""
    return describe(make_settings(n), make_frame(n))
