"""Live updates: topics that WebSocket peers subscribe to. Runs on the I/O loop only."""

from __future__ import annotations

from collections import defaultdict
from typing import Any


class Hub:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[Any]] = defaultdict(set)
        self._topics_of: dict[Any, set[str]] = defaultdict(set)

    def subscribe(self, peer: Any, topic: str) -> None:
        self._subscribers[topic].add(peer)
        self._topics_of[peer].add(topic)

    def unsubscribe(self, peer: Any, topic: str) -> None:
        self._subscribers.get(topic, set()).discard(peer)
        self._topics_of.get(peer, set()).discard(topic)

    def drop(self, peer: Any) -> None:
        for topic in self._topics_of.pop(peer, set()):
            subscribers = self._subscribers.get(topic)
            if subscribers is not None:
                subscribers.discard(peer)
                if not subscribers:
                    del self._subscribers[topic]

    def route(self, events: list[tuple[str, dict]]) -> dict[Any, list[dict]]:
        """Group published events by the peers subscribed to their topics."""
        per_peer: dict[Any, list[dict]] = {}
        for topic, data in events:
            subscribers = self._subscribers.get(topic)
            if not subscribers:
                continue
            item = {"topic": topic, "data": data}
            for peer in subscribers:
                per_peer.setdefault(peer, []).append(item)
        return per_peer
