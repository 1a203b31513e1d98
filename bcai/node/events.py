"""Node events for WebSocket subscribers: new heads, new transactions, peer
connections. Each subscriber has a bounded queue; one that falls behind is
dropped (its socket is closed with code 1013) rather than slowing the node
or growing memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import trio

TOPICS = ("heads", "txs", "peers")
QUEUE = 256


@dataclass(eq=False)
class Subscription:
    topics: frozenset[str]
    send: trio.MemorySendChannel[dict[str, Any]]
    receive: trio.MemoryReceiveChannel[dict[str, Any]]
    overflowed: bool = False


@dataclass
class EventBus:
    max_subscribers: int = 64
    subscribers: set[Subscription] = field(default_factory=set)
    published: dict[str, int] = field(default_factory=dict)

    def subscribe(self, topics: frozenset[str]) -> Subscription | None:
        """A new subscription, or None when the subscriber slots are full."""
        if len(self.subscribers) >= self.max_subscribers:
            return None
        send, receive = trio.open_memory_channel[dict[str, Any]](QUEUE)
        sub = Subscription(topics, send, receive)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscribers.discard(sub)
        sub.send.close()

    def publish(self, topic: str, event: dict[str, Any]) -> None:
        self.published[topic] = self.published.get(topic, 0) + 1
        for sub in list(self.subscribers):
            if topic not in sub.topics:
                continue
            try:
                sub.send.send_nowait(event)
            except trio.WouldBlock:
                sub.overflowed = True
                self.unsubscribe(sub)
            except trio.ClosedResourceError:
                self.subscribers.discard(sub)
