"""bcai.net: the network layer. Today: Noise-encrypted sessions with an
identity handshake and length-prefixed frames (docs/protocol.md). Gossip,
request/response, the connection manager and sync build on it (issue 4).

Layer: network.
"""

from bcai.net._errors import ConnectionClosed, HandshakeError, NetError, PeerMisbehaved
from bcai.net._identity import PROTOCOL_VERSION, HandshakePayload, peer_id
from bcai.net._session import (
    MAX_FRAME,
    MAX_PLAINTEXT,
    FrameKind,
    NodeKeys,
    SecureSession,
    handshake,
)
from bcai.net._transport import connect, serve

__all__ = [
    "MAX_FRAME",
    "MAX_PLAINTEXT",
    "PROTOCOL_VERSION",
    "ConnectionClosed",
    "FrameKind",
    "HandshakeError",
    "HandshakePayload",
    "NetError",
    "NodeKeys",
    "PeerMisbehaved",
    "SecureSession",
    "connect",
    "handshake",
    "peer_id",
    "serve",
]
