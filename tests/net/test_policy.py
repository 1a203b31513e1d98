"""Connection policy: per-IP and per-/24 limits, bans that expire, redial
backoff, eviction that protects diverse, fast, useful and old peers, and
which of two connections with one peer survives."""

from __future__ import annotations

from bcai.net import PeerInfo, PeerTable, netgroup, subnet24
from bcai.net._policy import duplicate_replaces


def peer(n: int, ip: str, *, inbound: bool = True, at: float = 0.0, **kw: float) -> PeerInfo:
    return PeerInfo(peer_id=n.to_bytes(4, "big"), ip=ip, inbound=inbound, connected_at=at, **kw)


def test_groups() -> None:
    assert subnet24("10.1.2.3") == "10.1.2.0/24"
    assert netgroup("10.1.2.3") == "10.1.0.0/16"
    assert subnet24("2001:db8::1") == "2001:db8::/48"


def test_limits_per_ip_and_subnet() -> None:
    t = PeerTable()
    assert t.admission("10.0.0.1", True, 0) is None
    t.peers[b"a"] = peer(1, "10.0.0.1")
    t.peers[b"b"] = peer(2, "10.0.0.1")
    assert t.admission("10.0.0.1", True, 0) == "conn-limit-ip"
    t.peers[b"c"] = peer(3, "10.0.0.2")
    t.peers[b"d"] = peer(4, "10.0.0.3")
    assert t.admission("10.0.0.9", True, 0) == "conn-limit-subnet"
    assert t.admission("10.0.1.9", True, 0) is None


def test_bans_expire() -> None:
    t = PeerTable()
    t.ban("10.9.9.9", now=100, duration_s=60)
    assert t.admission("10.9.9.9", False, 120) == "conn-banned"
    assert t.admission("10.9.9.9", False, 160) is None
    assert not t.bans  # expired bans are forgotten


def test_total_and_inbound_limits() -> None:
    t = PeerTable(max_peers=3, max_inbound=2)
    for i in range(3):
        p = peer(i, f"10.{i}.0.1", inbound=False)
        t.peers[p.peer_id] = p
    assert t.admission("10.50.0.1", False, 0) == "conn-limit-total"


def test_redial_backoff() -> None:
    t = PeerTable()
    assert t.next_dial_at("a:1", 10) == 10
    delays = []
    for k in range(12):
        t.dial_failed("a:1", 100.0 + k)
        delays.append(t.next_dial_at("a:1", 500.0) - (100.0 + k))  # from the last failure
    assert delays[:4] == [1, 2, 4, 8] and delays[-1] == 300
    t.dial_succeeded("a:1")
    assert t.next_dial_at("a:1", 5) == 5


def test_eviction_protects_the_valuable_and_picks_a_crowded_young_peer() -> None:
    t = PeerTable()
    # 20 peers from one /16 (an attacker's block), connected recently
    for i in range(20):
        p = peer(i, f"66.6.{i}.1", at=1000 + i)
        t.peers[p.peer_id] = p
    # a handful of honest peers in distinct groups, older, fast or useful
    honest = [
        peer(100, "1.2.3.4", at=1),
        peer(101, "5.6.7.8", at=2, ping_s=0.001),
        peer(102, "9.9.9.9", at=3, last_useful_at=999),
        peer(103, "11.11.11.11", at=4),
    ]
    for p in honest:
        t.peers[p.peer_id] = p
    victim = t.eviction_candidate()
    assert victim is not None
    assert victim not in {p.peer_id for p in honest}
    assert t.peers[victim].ip.startswith("66.6.")
    assert t.peers[victim].connected_at >= 1010  # among the youngest of that group


def test_nobody_to_evict_when_all_are_protected() -> None:
    t = PeerTable(max_inbound=2)
    t.peers[b"a"] = peer(1, "1.1.1.1")
    t.peers[b"b"] = peer(2, "2.2.2.2")
    assert t.eviction_candidate() is None
    assert t.admission("3.3.3.3", True, 0) == "conn-limit-inbound"


def test_which_of_two_connections_with_one_peer_survives() -> None:
    def rule(me_smaller: bool, inbound: bool, existing_inbound: bool, **kw: bool) -> str | None:
        args = {"relayed": False, "existing_relayed": False, "dialback": False, **kw}
        return duplicate_replaces(
            me_smaller=me_smaller, inbound=inbound, existing_inbound=existing_inbound, **args
        )

    # simultaneous dials: the connection dialed by the smaller id survives on both sides
    for me_smaller in (True, False):
        for new_in, old_in in ((False, True), (True, False)):
            mine = rule(me_smaller, new_in, old_in)
            theirs = rule(not me_smaller, not new_in, not old_in)  # the peer's view
            assert mine == theirs  # both sides make the same choice
            new_by_smaller = (not new_in) == me_smaller
            assert mine == ("conn-duplicate" if new_by_smaller else None)
    # the same direction twice (a redial): the newcomer is refused
    assert rule(True, False, False) is None and rule(False, True, True) is None
    # a direct connection upgrades a relayed one, never the reverse
    assert rule(True, True, True, existing_relayed=True) == "conn-upgraded"
    assert rule(False, True, False, relayed=True) is None
    # a dial-back we asked for never replaces ours, whoever is smaller
    assert rule(False, True, False, dialback=True) is None
    assert rule(False, True, False) == "conn-duplicate"  # (without the flag it would)
