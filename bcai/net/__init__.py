"""bcai.net: the network layer. Today: Noise-encrypted sessions with an
identity handshake and length-prefixed frames, and peers with pings and
request/response (docs/protocol.md). Gossip, the connection manager and sync
build on them (issue 4).

Layer: network.
"""

from bcai.net._errors import ConnectionClosed, HandshakeError, NetError, PeerMisbehaved
from bcai.net._identity import PROTOCOL_VERSION, HandshakePayload, peer_id
from bcai.net._peer import Peer, RequestFailed
from bcai.net._policy import PeerInfo, PeerTable, netgroup, subnet24
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
    "Peer",
    "PeerInfo",
    "PeerMisbehaved",
    "PeerTable",
    "RequestFailed",
    "SecureSession",
    "connect",
    "handshake",
    "netgroup",
    "peer_id",
    "serve",
    "subnet24",
]
