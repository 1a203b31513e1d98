"""Relayed connections over real TCP on 127.0.0.1 (the NAT harness runs the
same code across network namespaces): circuits, limits and bad requests."""

from __future__ import annotations

import pytest
import trio

from bcai.net import FrameKind, HostConfig, RequestFailed
from bcai.net._relay import (
    OP_DATA,
    Relay,
    RelayLimits,
    frame,
)
from tests.net.cluster import Cluster, Node


def host_of(node: Node):  # type: ignore[no-untyped-def]
    assert node.host is not None
    return node.host


async def relayed_pair(c: Cluster, limits: RelayLimits) -> tuple[Node, Node, Node, Relay, Relay]:
    r, a, b = await c.add(), await c.add(), await c.add()
    relay = Relay(host_of(r), limits)
    ra, rb = Relay(host_of(a)), Relay(host_of(b))
    await host_of(a).dial("127.0.0.1", r.port)
    await host_of(b).dial("127.0.0.1", r.port)
    await rb.reserve(host_of(r).peer_id)
    return r, a, b, relay, ra


async def test_a_circuit_carries_a_full_session() -> None:
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery, seed=20)
        r, a, b, relay, ra = await relayed_pair(c, RelayLimits(enabled=True))

        async def echo(peer: bytes, body: bytes) -> bytes:
            return body[::-1]

        host_of(b).handle("echo", echo)
        pid = await ra.dial_via(host_of(r).peer_id, host_of(b).peer_id)
        assert pid == host_of(b).peer_id
        conn = host_of(a).conns[pid]
        assert conn.relayed_via == host_of(r).peer_id
        big = bytes(range(256)) * 200  # spans several relay chunks
        assert await host_of(a).request(pid, "echo", big[:60000]) == big[:60000][::-1]
        # gossip flows over the circuit too
        await c.wait_for(lambda: pid in host_of(a).router.mesh["blocks"], 5)
        mid = host_of(a).publish("blocks", b"relayed block")
        await c.wait_for(lambda: mid in b.received["blocks"])
        assert relay.stats.circuits == 1
        nursery.cancel_scope.cancel()


async def test_relay_refusals_have_reason_codes() -> None:
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery, seed=21)
        r, a, _b, relay, ra = await relayed_pair(c, RelayLimits(enabled=True))
        rid = host_of(r).peer_id
        with pytest.raises(RequestFailed) as err:
            await ra.dial_via(rid, bytes(32))
        assert err.value.code == "relay-no-reservation"
        with pytest.raises(RequestFailed) as err:
            await host_of(a).request(rid, "relay/connect", b"\x01\x02")
        assert err.value.code == "relay-malformed"
        # a node that does not relay says so
        d = await c.add()
        Relay(host_of(d))
        did = await host_of(a).dial("127.0.0.1", d.port)
        with pytest.raises(RequestFailed) as err:
            await ra.reserve(did)
        assert err.value.code == "relay-disabled"
        assert relay.stats.refused == {"relay-no-reservation": 1, "relay-malformed": 1}
        nursery.cancel_scope.cancel()


async def test_relay_limits_hold() -> None:
    limits = RelayLimits(enabled=True, max_bytes=200_000, max_circuits_per_peer=1)
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery, seed=22)
        r, a, b, relay, ra = await relayed_pair(c, limits)
        rid, bid = host_of(r).peer_id, host_of(b).peer_id

        async def sink(peer: bytes, body: bytes) -> bytes:
            return b"ok"

        host_of(b).handle("sink", sink)
        await ra.dial_via(rid, bid)
        # a second circuit for the same peer is over the per-peer limit
        e = await c.add()
        re_ = Relay(host_of(e))
        await host_of(e).dial("127.0.0.1", r.port)
        with pytest.raises(RequestFailed) as err:
            await re_.dial_via(rid, bid)
        assert err.value.code == "relay-peer-limit"
        # past max_bytes the relay closes the circuit and the session ends
        with pytest.raises(RequestFailed):
            for _ in range(10):
                await host_of(a).request(bid, "sink", b"x" * 60000, timeout_s=2)
        await c.wait_for(lambda: bid not in host_of(a).connected(), 5)
        assert relay.stats.closed.get("relay-limit-bytes") == 1
        assert not relay.hops
        nursery.cancel_scope.cancel()


async def test_malformed_relay_frames_end_the_session() -> None:
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery, seed=23)
        r, a, b, _relay, _ra = await relayed_pair(c, RelayLimits(enabled=True))
        rid = host_of(r).peer_id
        session = host_of(a).conns[rid].peer.session
        await session.send_frame(FrameKind.RELAY, b"\x00\x01")  # too short
        await c.wait_for(lambda: host_of(a).peer_id not in host_of(r).connected())
        # a frame for an unknown circuit is dropped quietly
        await (
            host_of(b)
            .conns[rid]
            .peer.session.send_frame(FrameKind.RELAY, frame(999, OP_DATA, b"late"))
        )
        await trio.sleep(0.1)
        assert host_of(b).peer_id in host_of(r).connected()
        nursery.cancel_scope.cancel()


def test_relaying_is_opt_in_and_ports_are_not_shared_by_default() -> None:
    assert RelayLimits().enabled is False
    assert HostConfig().reuse_port is False


async def test_a_direct_connection_replaces_the_relayed_one_and_frees_the_circuit() -> None:
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery, seed=24)
        r, a, b, relay, ra = await relayed_pair(c, RelayLimits(enabled=True))
        pid = await ra.dial_via(host_of(r).peer_id, host_of(b).peer_id)
        assert host_of(a).conns[pid].relayed_via is not None
        assert len(relay.hops) == 2
        await host_of(a).dial("127.0.0.1", b.port)
        await c.wait_for(lambda: not relay.hops)
        assert host_of(a).conns[pid].relayed_via is None
        assert relay.stats.closed == {"closed": 1}
        assert not ra.ends
        nursery.cancel_scope.cancel()
