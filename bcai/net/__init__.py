"""bcai.net: the network layer (docs/protocol.md): Noise-encrypted sessions
with an identity handshake and length-prefixed frames; peers with pings and
request/response; the host (connection manager) that runs them and drives the
gossipsub v1.1 router with peer scoring; headers-first chain sync; discovery
(address book, peer exchange, Kademlia DHT) and NAT traversal (reachability,
relays, hole punching, NAT-PMP and UPnP port mapping).

Layer: network.
"""

from bcai.net._addrman import AddrMan, NetAddr
from bcai.net._autonat import AutoNat, Reach
from bcai.net._dht import Dht, content_key
from bcai.net._discovery import Discovery, DiscoveryConfig
from bcai.net._errors import ConnectionClosed, HandshakeError, NetError, PeerMisbehaved
from bcai.net._gossip import GossipRouter, Validation
from bcai.net._gossip_params import GossipParams, ScoreParams, TopicScoreParams
from bcai.net._holepunch import HolePuncher
from bcai.net._host import Host
from bcai.net._host_types import Delivered, HostConfig
from bcai.net._identity import PROTOCOL_VERSION, HandshakePayload, peer_id
from bcai.net._peer import Peer, RequestFailed
from bcai.net._policy import PeerInfo, PeerTable, netgroup, subnet24
from bcai.net._relay import Relay, RelayLimits
from bcai.net._session import (
    MAX_FRAME,
    MAX_PLAINTEXT,
    FrameKind,
    NodeKeys,
    SecureSession,
    handshake,
)
from bcai.net._sync import Syncer, SyncReport, serve_sync
from bcai.net._transport import connect, serve

__all__ = [
    "MAX_FRAME",
    "MAX_PLAINTEXT",
    "PROTOCOL_VERSION",
    "AddrMan",
    "AutoNat",
    "ConnectionClosed",
    "Delivered",
    "Dht",
    "Discovery",
    "DiscoveryConfig",
    "FrameKind",
    "GossipParams",
    "GossipRouter",
    "HandshakeError",
    "HandshakePayload",
    "HolePuncher",
    "Host",
    "HostConfig",
    "NetAddr",
    "NetError",
    "NodeKeys",
    "Peer",
    "PeerInfo",
    "PeerMisbehaved",
    "PeerTable",
    "Reach",
    "Relay",
    "RelayLimits",
    "RequestFailed",
    "ScoreParams",
    "SecureSession",
    "SyncReport",
    "Syncer",
    "TopicScoreParams",
    "Validation",
    "connect",
    "content_key",
    "handshake",
    "netgroup",
    "peer_id",
    "serve",
    "serve_sync",
    "subnet24",
]
