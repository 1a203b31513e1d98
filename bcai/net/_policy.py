"""Connection policy: who may connect, who is evicted when inbound slots are
full, when to redial, and bans. Pure: every decision takes `now` (seconds)
and the table's state; the connection manager applies them.

Eviction follows Bitcoin Core's idea (net.cpp, AttemptToEvictConnection):
protect peers that are hard for an attacker to fake — distinct /16 groups,
the lowest ping times, peers that recently relayed useful blocks and
transactions, the longest-connected — then evict the youngest peer of the
network group with the most remaining connections.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

MAX_PEERS = 50
MAX_INBOUND = 40
MAX_PER_IP = 2
MAX_PER_SUBNET24 = 4
REDIAL_BASE_S = 1.0
REDIAL_MAX_S = 300.0
PROTECT_NETGROUPS = 4
PROTECT_PING = 8
PROTECT_USEFUL = 4
PROTECT_UPTIME_FRACTION = 0.5


def subnet24(ip: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) a peer's address falls in."""
    addr = ipaddress.ip_address(ip)
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def netgroup(ip: str) -> str:
    """The /16 (IPv4) or /32 (IPv6) group used for diversity."""
    addr = ipaddress.ip_address(ip)
    prefix = 16 if addr.version == 4 else 32
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def duplicate_replaces(
    *,
    me_smaller: bool,
    inbound: bool,
    relayed: bool,
    existing_inbound: bool,
    existing_relayed: bool,
    dialback: bool,
) -> str | None:
    """A new connection with a peer we are already connected to: the reason
    the existing one is closed for (the new one replaces it), or None (the
    new one is refused as ``conn-duplicate``).

    - A direct connection replaces a relayed one (``conn-upgraded``).
    - A dial-back we asked for (reachability) never replaces ours: the
      dialer only wanted the handshake and hangs up at once.
    - Otherwise both sides may have dialed at once: both keep the connection
      dialed by the smaller peer id, so they agree on which one survives.
    """
    if existing_relayed and not relayed:
        return "conn-upgraded"
    if dialback:
        return None
    new_dialed_by_smaller = (not inbound) == me_smaller
    old_dialed_by_smaller = (not existing_inbound) == me_smaller
    if relayed == existing_relayed and new_dialed_by_smaller and not old_dialed_by_smaller:
        return "conn-duplicate"
    return None


@dataclass
class PeerInfo:
    peer_id: bytes
    ip: str
    inbound: bool
    connected_at: float
    ping_s: float = float("inf")
    last_useful_at: float = float("-inf")


@dataclass
class PeerTable:
    """Connected peers, bans and redial state."""

    max_peers: int = MAX_PEERS
    max_inbound: int = MAX_INBOUND
    max_per_ip: int = MAX_PER_IP
    max_per_subnet24: int = MAX_PER_SUBNET24
    peers: dict[bytes, PeerInfo] = field(default_factory=dict)
    bans: dict[str, float] = field(default_factory=dict)  # ip -> banned until
    failures: dict[str, int] = field(default_factory=dict)  # address -> failed dials in a row
    failed_at: dict[str, float] = field(default_factory=dict)  # address -> last failure

    def is_banned(self, ip: str, now: float) -> bool:
        until = self.bans.get(ip)
        if until is None:
            return False
        if until <= now:
            del self.bans[ip]
            return False
        return True

    def ban(self, ip: str, now: float, duration_s: float) -> None:
        self.bans[ip] = max(self.bans.get(ip, now), now + duration_s)

    def admission(self, ip: str, inbound: bool, now: float) -> str | None:
        """None if a connection from/to `ip` may be opened now, else the
        reason code."""
        if self.is_banned(ip, now):
            return "conn-banned"
        if sum(p.ip == ip for p in self.peers.values()) >= self.max_per_ip:
            return "conn-limit-ip"
        net = subnet24(ip)
        if sum(subnet24(p.ip) == net for p in self.peers.values()) >= self.max_per_subnet24:
            return "conn-limit-subnet"
        return self.admission_count(inbound)

    def admission_count(self, inbound: bool) -> str | None:
        """The slot checks alone (for relayed connections, whose address is
        the relay's)."""
        if inbound and sum(p.inbound for p in self.peers.values()) >= self.max_inbound:
            return "conn-limit-inbound" if self.eviction_candidate() is None else None
        if len(self.peers) >= self.max_peers:
            return "conn-limit-total"
        return None

    def eviction_candidate(self) -> bytes | None:
        """The inbound peer to drop to make room, or None if all are protected."""
        candidates = [p for p in self.peers.values() if p.inbound]
        protected: set[bytes] = set()

        def protect(ranked: list[PeerInfo], count: int) -> None:
            for p in ranked[:count]:
                protected.add(p.peer_id)

        by_group: dict[str, list[PeerInfo]] = {}
        for p in candidates:
            by_group.setdefault(netgroup(p.ip), []).append(p)
        # one peer from each of the rarest groups
        rare = sorted(by_group.values(), key=len)[:PROTECT_NETGROUPS]
        protect([min(g, key=lambda p: p.connected_at) for g in rare], PROTECT_NETGROUPS)
        pinged = [p for p in candidates if p.ping_s != float("inf")]
        protect(sorted(pinged, key=lambda p: p.ping_s), PROTECT_PING)
        useful = [p for p in candidates if p.last_useful_at != float("-inf")]
        protect(sorted(useful, key=lambda p: -p.last_useful_at), PROTECT_USEFUL)
        rest = [p for p in candidates if p.peer_id not in protected]
        protect(
            sorted(rest, key=lambda p: p.connected_at), int(len(rest) * PROTECT_UPTIME_FRACTION)
        )
        rest = [p for p in candidates if p.peer_id not in protected]
        if not rest:
            return None
        groups: dict[str, list[PeerInfo]] = {}
        for p in rest:
            groups.setdefault(netgroup(p.ip), []).append(p)
        crowded = max(groups.values(), key=lambda g: (len(g), max(p.connected_at for p in g)))
        return max(crowded, key=lambda p: p.connected_at).peer_id

    def next_dial_at(self, address: str, now: float) -> float:
        """When `address` may be dialed again: 1 s after the last failure,
        doubling per failure in a row, capped at 5 minutes."""
        failures = self.failures.get(address, 0)
        if failures == 0:
            return now
        delay = min(REDIAL_MAX_S, REDIAL_BASE_S * float(2 ** min(failures - 1, 60)))
        return self.failed_at.get(address, now) + delay

    def dial_failed(self, address: str, now: float) -> None:
        self.failures[address] = self.failures.get(address, 0) + 1
        self.failed_at[address] = now

    def dial_succeeded(self, address: str) -> None:
        self.failures.pop(address, None)
        self.failed_at.pop(address, None)
