"""The gossip router as a state machine: routers wired to each other in
memory, time passed explicitly (the same code the host drives over TCP)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bcai.net._errors import PeerMisbehaved
from bcai.net._gossip import GossipRouter, Received, Validation
from bcai.net._gossip_params import GossipParams, ScoreParams
from bcai.net._gossip_wire import RPC, IHave, Message, Prune, Subscription, decode_rpc, message_id

LOOPBACK = ScoreParams(ip_colocation_whitelist=frozenset({"127.0.0.1"}))


def rpc(**kw: object) -> RPC:
    base: dict[str, object] = dict(
        subscriptions=(), messages=(), ihave=(), iwant=(), graft=(), prune=()
    )
    base.update(kw)
    return RPC(**base)  # type: ignore[arg-type]


class Net:
    """n routers, each pair connected as listed; delivers queued RPCs until
    quiet; every message is validated by `verdict`."""

    def __init__(self, n: int, edges: list[tuple[int, int]], *, params: GossipParams | None = None):
        self.routers = [GossipRouter(params or GossipParams(), LOOPBACK, seed=i) for i in range(n)]
        self.ids = [bytes([i]) * 32 for i in range(n)]
        self.now = 0.0
        self.delivered: list[list[bytes]] = [[] for _ in range(n)]
        self.verdict = lambda i, m: Validation.ACCEPT
        for a, b in edges:
            self.routers[a].add_peer(self.ids[b], "127.0.0.1", True, self.now)
            self.routers[b].add_peer(self.ids[a], "127.0.0.1", False, self.now)

    def index(self, pid: bytes) -> int:
        return self.ids.index(pid)

    def pump(self) -> int:
        sent = 0
        while True:
            batch = [
                (i, pid, r)
                for i, router in enumerate(self.routers)
                for pid, r in router.take_outgoing()
            ]
            if not batch:
                return sent
            for i, pid, r in batch:
                sent += 1
                j = self.index(pid)
                wire = decode_rpc(r.encode())  # through the codec, as on the wire
                for rec in self.routers[j].handle_rpc(self.ids[i], wire, self.now):
                    ok = self.routers[j].validated(rec, self.verdict(j, rec.message), self.now)
                    if ok:
                        self.delivered[j].append(rec.message_id)

    def tick(self, seconds: float = 1.0) -> None:
        self.now += seconds
        for r in self.routers:
            r.heartbeat(self.now)
        self.pump()


def ring(n: int, chords: int = 3) -> list[tuple[int, int]]:
    edges = {(i, (i + 1) % n) for i in range(n)}
    edges |= {(i, (i + chords) % n) for i in range(0, n, 2)}
    return sorted(edges)


def test_mesh_forms_within_bounds_and_a_message_reaches_everyone() -> None:
    net = Net(20, ring(20))
    for r in net.routers:
        r.subscribe("blocks", net.now)
    net.pump()
    for _ in range(3):
        net.tick()
    for r in net.routers:
        degree = len(r.mesh["blocks"])
        assert 1 <= degree <= r.params.d_hi
        # the mesh is symmetric: whoever is in my mesh has me in theirs
        for pid in r.mesh["blocks"]:
            peer = net.routers[net.index(pid)]
            me = net.ids[net.routers.index(r)]
            assert me in peer.mesh["blocks"]
    mid = net.routers[0].publish("blocks", b"block-1", net.now)
    net.pump()
    assert all(mid in d for d in net.delivered[1:])
    assert mid == message_id("blocks", b"block-1")


def test_publish_floods_to_every_subscribed_peer_not_only_the_mesh() -> None:
    star = [(0, i) for i in range(1, 16)]
    net = Net(16, star)
    for r in net.routers:
        r.subscribe("txs", net.now)
    net.pump()
    net.tick()  # everyone grafts the hub: it may overshoot D_hi until...
    net.tick()  # ...its next heartbeat prunes back to D
    assert len(net.routers[0].mesh["txs"]) == net.routers[0].params.d
    net.routers[0].publish("txs", b"tx", net.now)
    out = net.routers[0].take_outgoing()
    assert len([p for p, r in out if r.messages]) == 15  # flood publish: all 15
    no_flood = Net(16, star, params=GossipParams(flood_publish=False))
    for r in no_flood.routers:
        r.subscribe("txs", no_flood.now)
    no_flood.pump()
    no_flood.tick()
    no_flood.tick()
    no_flood.routers[0].publish("txs", b"tx", no_flood.now)
    out = no_flood.routers[0].take_outgoing()
    assert len([p for p, r in out if r.messages]) == len(no_flood.routers[0].mesh["txs"]) < 15


def test_oversubscribed_mesh_is_pruned_to_d_and_keeps_outbound_peers() -> None:
    net = Net(20, [(0, i) for i in range(1, 20)])
    hub = net.routers[0]
    hub.subscribe("blocks", net.now)
    net.pump()
    for r in net.routers[1:]:
        r.subscribe("blocks", net.now)  # each grafts the hub
    net.pump()
    assert len(hub.mesh["blocks"]) > hub.params.d_hi or len(hub.mesh["blocks"]) == 19
    net.tick()
    assert len(hub.mesh["blocks"]) == hub.params.d
    outbound = [p for p in hub.mesh["blocks"] if hub.peers[p].outbound]
    assert len(outbound) >= hub.params.d_out


def test_prune_backoff_and_graft_during_backoff_is_penalised() -> None:
    net = Net(2, [(0, 1)])
    a = net.routers[0]
    for r in net.routers:
        r.subscribe("blocks", net.now)
    net.pump()
    net.tick()
    assert net.ids[1] in a.mesh["blocks"]
    a.handle_rpc(net.ids[1], rpc(prune=(Prune(topic="blocks", backoff_s=60),)), net.now)
    assert net.ids[1] not in a.mesh["blocks"]
    before = a.score.peers[net.ids[1]].behaviour_penalty
    a.handle_rpc(net.ids[1], rpc(graft=("blocks",)), net.now + 1)
    assert a.score.peers[net.ids[1]].behaviour_penalty == before + 1
    assert net.ids[1] not in a.mesh["blocks"]
    out = dict(a.take_outgoing())
    assert out[net.ids[1]].prune[0].topic == "blocks"
    # after the backoff, a graft is accepted again
    a.handle_rpc(net.ids[1], rpc(graft=("blocks",)), net.now + 200)
    assert net.ids[1] in a.mesh["blocks"]


def test_ihave_iwant_recovers_a_message_outside_the_mesh() -> None:
    net = Net(2, [(0, 1)], params=GossipParams(d=0, d_lo=0, d_out=0, flood_publish=False))
    a, b = net.routers
    for r in net.routers:
        r.subscribe("txs", net.now)
    net.pump()
    assert not a.mesh["txs"] and not b.mesh["txs"]
    mid = a.publish("txs", b"lazy", net.now)
    assert net.pump() == 0  # no mesh, no flood: nothing sent yet
    net.tick()  # heartbeat: IHAVE → IWANT → message
    assert mid in net.delivered[1]
    assert a.stats.iwant_served == 1


def test_broken_iwant_promises_cost_score() -> None:
    net = Net(2, [(0, 1)])
    a = net.routers[0]
    a.subscribe("txs", net.now)
    liar = net.ids[1]
    promises = 0
    while a.peer_score(liar, net.now) >= a.score.params.gossip_threshold:
        fake = tuple(bytes([promises, j]) * 16 for j in range(3))
        a.handle_rpc(liar, rpc(ihave=(IHave(topic="txs", ids=fake),)), net.now)
        assert any(r.iwant for _, r in a.take_outgoing())
        net.now += 4.0  # past the 3 s follow-up time
        a.heartbeat(net.now)
        promises += 1
        assert promises <= 8
    assert a.stats.broken_promises == promises >= 5
    # below the gossip threshold its IHAVEs are ignored
    ignored = a.stats.ihave_ignored
    a.handle_rpc(liar, rpc(ihave=(IHave(topic="txs", ids=(b"\x09" * 32,)),)), net.now)
    assert a.stats.ihave_ignored == ignored + 1


def test_kept_promise_is_not_penalised() -> None:
    net = Net(2, [(0, 1)])
    a = net.routers[0]
    a.subscribe("txs", net.now)
    msg = Message(topic="txs", data=b"real")
    a.handle_rpc(net.ids[1], rpc(ihave=(IHave(topic="txs", ids=(msg.message_id(),)),)), net.now)
    for rec in a.handle_rpc(net.ids[1], rpc(messages=(msg,)), net.now + 1):
        a.validated(rec, Validation.ACCEPT, net.now + 1)
    a.heartbeat(net.now + 5)
    assert a.stats.broken_promises == 0
    assert a.peer_score(net.ids[1], net.now + 5) > 0  # P2: a first delivery


def test_invalid_messages_graylist_the_sender_and_are_not_forwarded() -> None:
    net = Net(3, [(0, 1), (1, 2)])
    for r in net.routers:
        r.subscribe("blocks", net.now)
    net.pump()
    net.verdict = lambda i, m: Validation.REJECT if m.data.startswith(b"bad") else Validation.ACCEPT
    bad_peer = net.ids[0]
    mid = net.routers[1]
    sent = 0
    while mid.peer_score(bad_peer, net.now) >= mid.score.params.graylist_threshold:
        bad = Message(topic="blocks", data=b"bad%d" % sent)
        for rec in mid.handle_rpc(bad_peer, rpc(messages=(bad,)), net.now):
            assert not mid.validated(rec, Validation.REJECT, net.now)
        sent += 1
    assert sent == 3  # -10, -40, -90: the third crosses -80
    assert not [r for p, r in mid.take_outgoing() if r.messages]  # nothing forwarded
    # graylisted: its next RPC is dropped whole, even a valid message
    good = Message(topic="blocks", data=b"good")
    assert mid.handle_rpc(bad_peer, rpc(messages=(good,)), net.now) == []
    assert mid.stats.graylisted_rpcs == 1
    # IGNORE costs nothing
    other = net.ids[2]
    for rec in mid.handle_rpc(
        other, rpc(messages=(Message(topic="blocks", data=b"meh"),)), net.now
    ):
        mid.validated(rec, Validation.IGNORE, net.now)
    assert mid.peer_score(other, net.now) >= 0


def test_repeated_duplicates_are_dropped_and_penalised() -> None:
    net = Net(2, [(0, 1)])
    a = net.routers[0]
    a.subscribe("txs", net.now)
    flooder = net.ids[1]
    msg = Message(topic="txs", data=b"same")
    first = a.handle_rpc(flooder, rpc(messages=(msg,)), net.now)
    assert len(first) == 1
    a.validated(first[0], Validation.ACCEPT, net.now)
    for _ in range(20):
        assert a.handle_rpc(flooder, rpc(messages=(msg,) * 10), net.now) == []
    # repeats past the first cost P7 until the flooder is graylisted, after
    # which its RPCs are dropped unread
    assert 10 < a.stats.repeats < 200
    assert a.stats.graylisted_rpcs > 0
    assert a.peer_score(flooder, net.now) < a.score.params.graylist_threshold


def test_scores_decay_and_survive_a_reconnect() -> None:
    net = Net(2, [(0, 1)])
    a = net.routers[0]
    a.subscribe("blocks", net.now)
    bad = net.ids[1]
    for rec in a.handle_rpc(bad, rpc(messages=(Message(topic="blocks", data=b"x"),)), net.now):
        a.validated(rec, Validation.REJECT, net.now)
    s0 = a.peer_score(bad, net.now)
    assert s0 < 0
    a.remove_peer(bad, net.now)
    a.add_peer(bad, "127.0.0.1", False, net.now + 1)
    assert a.peer_score(bad, net.now + 1) == s0  # retained, not washed
    for k in range(1, 200):
        a.heartbeat(net.now + k)
    assert s0 < a.peer_score(bad, net.now + 200) <= 0  # decayed towards zero


def test_ip_colocation_penalises_many_peers_on_one_address() -> None:
    r = GossipRouter(GossipParams(), ScoreParams(), seed=1)
    for i in range(6):
        r.add_peer(bytes([i]) * 32, "10.0.0.7", False, 0.0)
    r.add_peer(b"\xaa" * 32, "10.9.9.9", False, 0.0)
    assert r.peer_score(b"\x00" * 32, 0.0) == -((6 - 3) ** 2)
    assert r.peer_score(b"\xaa" * 32, 0.0) == 0.0


def test_seen_cache_expires_and_mcache_rolls() -> None:
    net = Net(2, [(0, 1)])
    a = net.routers[0]
    a.subscribe("txs", net.now)
    msg = Message(topic="txs", data=b"old")
    (rec,) = a.handle_rpc(net.ids[1], rpc(messages=(msg,)), net.now)
    a.validated(rec, Validation.ACCEPT, net.now)
    assert rec.message_id in a.mcache
    for k in range(1, 7):
        a.heartbeat(net.now + k)
    assert rec.message_id not in a.mcache  # 5 windows
    assert rec.message_id in a.seen
    a.heartbeat(net.now + 200)
    assert rec.message_id not in a.seen  # 120 s TTL


def test_many_queued_messages_split_into_bounded_rpcs() -> None:
    net = Net(2, [(0, 1)])
    a = net.routers[0]
    a.subscribe("txs", 0.0)
    net.routers[1].subscribe("txs", 0.0)
    net.pump()
    for k in range(600):
        a.publish("txs", b"%d" % k, 0.0)
    rpcs = a.take_outgoing()
    assert [len(r.messages) for _, r in rpcs] == [256, 256, 88]


def test_bad_score_params_are_refused() -> None:
    with pytest.raises(ValueError, match="gossip_threshold"):
        dataclasses.replace(ScoreParams(), publish_threshold=-5.0)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_fuzz_rpc_decoder_only_raises_protocol_errors(data: bytes) -> None:
    try:
        decoded = decode_rpc(data)
    except PeerMisbehaved as err:
        assert err.code == "frame-malformed"
    else:
        assert decoded.encode() == data


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.binary(max_size=64), max_size=5),
    st.lists(st.binary(min_size=32, max_size=32), max_size=5),
)
def test_rpc_round_trips(datas: list[bytes], ids: list[bytes]) -> None:
    r = rpc(
        messages=tuple(Message(topic="txs", data=d) for d in datas),
        ihave=(IHave(topic="txs", ids=tuple(ids)),),
        iwant=tuple(ids),
        graft=("blocks",),
        prune=(Prune(topic="txs", backoff_s=60),),
    )
    assert decode_rpc(r.encode()) == r


def test_received_carries_the_content_id() -> None:
    r = GossipRouter(seed=0)
    r.subscribe("txs", 0.0)
    r.add_peer(b"\x01" * 32, "1.2.3.4", True, 0.0)
    out = r.handle_rpc(b"\x01" * 32, rpc(messages=(Message(topic="txs", data=b"d"),)), 0.0)
    assert out == [Received(message_id("txs", b"d"), Message(topic="txs", data=b"d"), b"\x01" * 32)]
    # unsubscribed topics and unknown peers are ignored
    assert r.handle_rpc(b"\x01" * 32, rpc(messages=(Message(topic="other", data=b"d"),)), 0.0) == []
    assert r.handle_rpc(b"\x02" * 32, rpc(messages=(Message(topic="txs", data=b"e"),)), 0.0) == []


def test_opportunistic_graft_brings_in_a_better_peer_when_the_mesh_is_poor() -> None:
    params = GossipParams(opportunistic_graft_ticks=5, d=3, d_lo=2, d_hi=4)
    r = GossipRouter(params, LOOPBACK, seed=3)
    r.subscribe("blocks", 0.0)
    peers = [bytes([i]) * 32 for i in range(1, 6)]
    for p in peers:
        r.add_peer(p, "127.0.0.1", True, 0.0)
        r.handle_rpc(p, rpc(subscriptions=(Subscription(topic="blocks", subscribe=True),)), 0.0)
    r.heartbeat(1.0)
    mesh = set(r.mesh["blocks"])
    assert len(mesh) == 3
    outside = [p for p in peers if p not in mesh]
    # the peers outside the mesh deliver first: their score (P2) rises
    for k, p in enumerate(outside):
        msg = Message(topic="blocks", data=b"fresh %d" % k)
        for rec in r.handle_rpc(p, rpc(messages=(msg,)), 1.0):
            r.validated(rec, Validation.ACCEPT, 1.0)
    assert all(r.peer_score(p, 1.0) > 0 for p in outside)
    for t in range(2, 6):
        r.heartbeat(float(t))  # heartbeat 5 is an opportunistic-graft tick
    assert set(outside) <= r.mesh["blocks"]
    assert any(r.graft for _, r in r.take_outgoing())
