"""The host's types: its configuration, what it delivers, the state it keeps
per connection, its metrics, and how an RPC is cut into frames."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import trio

from bcai.net._gossip import Validation
from bcai.net._gossip_params import DEFAULT_GOSSIP, DEFAULT_SCORE, GossipParams, ScoreParams
from bcai.net._gossip_wire import RPC
from bcai.net._peer import Peer
from bcai.net._policy import PeerInfo
from bcai.net._session import MAX_FRAME, FrameKind

Validator = Callable[[str, bytes, bytes], Awaitable[Validation]]
BanStore = Callable[[str, float], None]
PeerHandler = Callable[[bytes, bytes], Awaitable[bytes]]


class _Started(Protocol):  # trio.TaskStatus, spelled so any trio stubs agree
    def started(self, value: int) -> None: ...


@dataclass(frozen=True)
class HostConfig:
    """Connection-manager settings (docs/config.md, `[net]`)."""

    listen_host: str = "0.0.0.0"
    listen_port: int = 0
    max_peers: int = 50
    max_inbound: int = 40
    target_outbound: int = 8
    max_per_ip: int = 2
    max_per_subnet24: int = 4
    keepalive_s: float = 30.0
    ping_timeout_s: float = 10.0
    dial_interval_s: float = 1.0
    handshake_timeout_s: float = 5.0
    ban_s: float = 24 * 3600.0
    misbehaviour_ban_s: float = 3600.0
    validation_queue: int = 1024
    topic_queue: int = 1024
    bootstrap: tuple[tuple[str, int], ...] = ()
    advertise: tuple[str, ...] = ()
    reuse_port: bool = False  # dial from the listening port (NAT traversal)
    gossip: GossipParams = DEFAULT_GOSSIP
    score: ScoreParams = DEFAULT_SCORE
    seed: int | None = None


DEFAULT_HOST = HostConfig()


@dataclass
class Delivered:
    topic: str
    data: bytes
    message_id: bytes
    source: bytes


@dataclass
class Connection:
    peer: Peer
    info: PeerInfo
    scope: trio.CancelScope
    address: tuple[str, int] | None
    relayed_via: bytes | None = None
    wake: trio.Event = field(default_factory=trio.Event)


@dataclass
class HostMetrics:
    connections_in: int = 0
    connections_out: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    dropped_validation: int = 0
    dropped_delivery: int = 0
    disconnected_for_score: int = 0
    evicted: int = 0

    def reject(self, code: str) -> None:
        self.rejected[code] = self.rejected.get(code, 0) + 1


def _encode_rpcs(rpc: RPC) -> list[bytes]:
    """The RPC's encoding, split by messages until each part fits a frame."""
    raw = rpc.encode()
    if len(raw) <= MAX_FRAME[FrameKind.GOSSIP] or len(rpc.messages) <= 1:
        return [raw]
    half = len(rpc.messages) // 2
    first = dataclasses.replace(rpc, messages=rpc.messages[:half])
    second = dataclasses.replace(
        rpc, subscriptions=(), messages=rpc.messages[half:], ihave=(), iwant=(), graft=(), prune=()
    )
    return _encode_rpcs(first) + _encode_rpcs(second)
