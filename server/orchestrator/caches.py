"""Bounded in-memory caches of the orchestrator (results, runs, cache-key index).

Everything they hold can be read again from the database, so they are bounded by what they
cost rather than by how many entries they have: ten results of 10 MB must not stay resident
because a count limit of 100,000 was not reached. Eviction is least-recently-used, so the
entries the current batch just wrote or read are the last to go; an entry bigger than
`max_entry_bytes` is not kept at all (its reader goes to the database).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

ENTRY_OVERHEAD = 200  # bytes of a small entry: key string, tuple, dict node


def approx_size(value: Any, limit: int | None = None) -> int:
    """Roughly the bytes `value` (decoded JSON) takes in memory; stops counting past `limit`.

    An explicit stack, not recursion: values arrive at any depth."""
    size = 0
    stack = [value]
    pop, push, extend = stack.pop, stack.append, stack.extend
    while stack:
        item = pop()
        if isinstance(item, str):
            size += 50 + len(item)
        elif isinstance(item, dict):
            size += 64 + 24 * len(item)
            for key, child in item.items():
                size += 50 + len(key) if isinstance(key, str) else 32
                push(child)
        elif isinstance(item, list | tuple):
            size += 56 + 8 * len(item)
            extend(item)
        elif isinstance(item, bytes | bytearray):
            size += 33 + len(item)
        else:
            size += 28
        if limit is not None and size > limit:
            return size
    return size


class BoundedCache:
    """A least-recently-used mapping bounded by entry count and by approximate bytes."""

    __slots__ = ("_data", "_sizes", "max_items", "max_bytes", "max_entry_bytes", "bytes", "_sizeof")

    def __init__(self, max_items: int, max_bytes: int | None = None, *, max_entry_bytes: int | None = None,
                 sizeof: Callable[[Any], int] | None = None) -> None:
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._sizes: dict[Any, int] = {}
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_entry_bytes
        self.bytes = 0
        self._sizeof = sizeof

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Any) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def __getitem__(self, key: Any) -> Any:
        value = self._data[key]
        self._data.move_to_end(key)
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        data = self._data
        if key in data:
            data.move_to_end(key)
            return data[key]
        return default

    def __setitem__(self, key: Any, value: Any) -> None:
        self.put(key, value)

    def put(self, key: Any, value: Any) -> bool:
        """Keep `value` under `key`; False when it is too big to keep (any older entry is dropped)."""
        size = ENTRY_OVERHEAD
        if self._sizeof is not None:
            size += self._sizeof(value)
        self.pop(key, None)
        if self.max_entry_bytes is not None and size > self.max_entry_bytes:
            return False
        self._data[key] = value
        self._sizes[key] = size
        self.bytes += size
        self._trim()
        return True

    def pop(self, key: Any, default: Any = None) -> Any:
        if key not in self._data:
            return default
        self.bytes -= self._sizes.pop(key)
        return self._data.pop(key)

    def __delitem__(self, key: Any) -> None:
        if key not in self._data:
            raise KeyError(key)
        self.pop(key)

    def clear(self) -> None:
        self._data.clear()
        self._sizes.clear()
        self.bytes = 0

    def _trim(self) -> None:
        data, sizes = self._data, self._sizes
        while len(data) > self.max_items or (self.max_bytes is not None and self.bytes > self.max_bytes
                                              and len(data) > 1):
            key, _ = data.popitem(last=False)
            self.bytes -= sizes.pop(key)
