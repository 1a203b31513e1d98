"""The gossip RPC: the body of a GOSSIP frame (docs/protocol.md, "Gossip").

One RPC carries subscription changes, whole messages and control items, each
list with a declared maximum, so a decoder never allocates more than the
frame's 4 MiB. Message id = BLAKE3(u32 len(topic) ‖ topic ‖ data): content
addressed, so the same payload published twice is one message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bcai import codec
from bcai.crypto import blake3
from bcai.net._errors import PeerMisbehaved
from bcai.net._session import MAX_FRAME, FrameKind

MAX_TOPIC = 64
MAX_TOPICS = 64
MAX_MESSAGES = 256
MAX_IDS = 5000
MAX_DATA = MAX_FRAME[FrameKind.GOSSIP] - 1024
TOPIC = codec.Text(MAX_TOPIC)
MSG_ID = codec.FixedBytes(32)


def message_id(topic: str, data: bytes) -> bytes:
    raw = topic.encode()
    return blake3(len(raw).to_bytes(4, "big") + raw + data)


@dataclass(frozen=True, slots=True)
class Subscription(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/gossip/sub"
    topic: str = codec.field(TOPIC)
    subscribe: bool = codec.field(codec.Bool)


@dataclass(frozen=True, slots=True)
class Message(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/gossip/msg"
    topic: str = codec.field(TOPIC)
    data: bytes = codec.field(codec.Bytes(MAX_DATA))

    def message_id(self) -> bytes:
        return message_id(self.topic, self.data)


@dataclass(frozen=True, slots=True)
class IHave(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/gossip/ihave"
    topic: str = codec.field(TOPIC)
    ids: tuple[bytes, ...] = codec.field(codec.ListOf(MSG_ID, MAX_IDS))


@dataclass(frozen=True, slots=True)
class Prune(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/gossip/prune"
    topic: str = codec.field(TOPIC)
    backoff_s: int = codec.field(codec.U32)


@dataclass(frozen=True, slots=True)
class RPC(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/gossip/rpc"
    subscriptions: tuple[Subscription, ...] = codec.field(
        codec.ListOf(codec.RecordCodec(Subscription), MAX_TOPICS)
    )
    messages: tuple[Message, ...] = codec.field(
        codec.ListOf(codec.RecordCodec(Message), MAX_MESSAGES)
    )
    ihave: tuple[IHave, ...] = codec.field(codec.ListOf(codec.RecordCodec(IHave), MAX_TOPICS))
    iwant: tuple[bytes, ...] = codec.field(codec.ListOf(MSG_ID, MAX_IDS))
    graft: tuple[str, ...] = codec.field(codec.ListOf(TOPIC, MAX_TOPICS))
    prune: tuple[Prune, ...] = codec.field(codec.ListOf(codec.RecordCodec(Prune), MAX_TOPICS))

    def is_empty(self) -> bool:
        parts = (self.subscriptions, self.messages, self.ihave, self.iwant, self.graft, self.prune)
        return not any(parts)


def decode_rpc(body: bytes) -> RPC:
    try:
        return RPC.decode(body)
    except codec.DecodeError as err:
        raise PeerMisbehaved("frame-malformed", f"gossip RPC: {err.message}") from err
