"""The host over real TCP on 127.0.0.1: requests, gossip through 30-node
meshes with churn, adversarial peers, connection limits and bans."""

from __future__ import annotations

import contextlib
import dataclasses
import statistics
import time

import pytest
import trio

from bcai.net import (
    ConnectionClosed,
    FrameKind,
    NetError,
    NodeKeys,
    RequestFailed,
    SecureSession,
    connect,
    peer_id,
)
from bcai.net._gossip import Validation
from bcai.net._gossip_wire import RPC, IHave, Message, Subscription
from bcai.net._host import Host
from bcai.store import ChainStore, load_bans, save_ban
from tests.chain.builder import make_genesis, make_keys
from tests.net.cluster import CONFIG, GENESIS, Cluster, Node


def rpc(**kw: object) -> RPC:
    base: dict[str, object] = dict(
        subscriptions=(), messages=(), ihave=(), iwant=(), graft=(), prune=()
    )
    base.update(kw)
    return RPC(**base)  # type: ignore[arg-type]


def host_of(node: Node) -> Host:
    assert node.host is not None
    return node.host


async def test_requests_gossip_and_goodbye_between_two_hosts() -> None:
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery)
        a, b = await c.add(), await c.add()

        async def echo(peer: bytes, body: bytes) -> bytes:
            return peer + body

        async def refuse(_peer: bytes, _body: bytes) -> bytes:
            raise RequestFailed("not-today", "no")

        host_of(b).handle("echo", echo)
        host_of(b).handle("refuse", refuse)
        pid = await host_of(a).dial("127.0.0.1", b.port)
        assert pid == host_of(b).peer_id
        answer = await host_of(a).request(pid, "echo", b"hi")
        assert answer == host_of(a).peer_id + b"hi"  # the handler knows who asked
        with pytest.raises(RequestFailed) as err:
            await host_of(a).request(pid, "refuse", b"")
        assert err.value.code == "not-today"
        with pytest.raises(RequestFailed) as err:
            await host_of(a).request(pid, "nope", b"")
        assert err.value.code == "unknown-method"
        await c.wait_for(lambda: host_of(a).router.mesh["blocks"])
        mid = host_of(a).publish("blocks", b"block")
        await c.wait_for(lambda: mid in b.received["blocks"])
        # dialing a connected peer again keeps the one connection: both
        # learned each other's listen address, so neither dials anew
        outs = [host_of(x).metrics.connections_out for x in (a, b)]
        assert await host_of(a).dial("127.0.0.1", b.port) == pid
        assert await host_of(b).dial("127.0.0.1", a.port) == host_of(a).peer_id
        await trio.sleep(0.1)
        assert [host_of(x).metrics.connections_out for x in (a, b)] == outs
        assert host_of(a).connected() == [pid]
        assert host_of(b).connected() == [host_of(a).peer_id]
        await host_of(a).disconnect(pid, "bye-for-now")
        await c.wait_for(lambda: not host_of(b).connected())
        assert not host_of(a).connected()
        nursery.cancel_scope.cancel()


async def test_thirty_nodes_a_block_reaches_everyone() -> None:
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery, seed=30)
        for _ in range(30):
            await c.add()
        await c.connect_random(degree=2)
        await c.wait_for(lambda: all(host_of(n).router.mesh["blocks"] for n in c.nodes))
        degrees = [len(host_of(n).connected()) for n in c.nodes]
        assert statistics.mean(degrees) < 12  # sparse, not a clique
        mid = host_of(c.nodes[7]).publish("blocks", b"block at height 1")
        others = [n for i, n in enumerate(c.nodes) if i != 7]
        await c.wait_for(lambda: all(mid in n.received["blocks"] for n in others))
        nursery.cancel_scope.cancel()


async def test_thirty_nodes_deliver_999_of_1000_while_10_percent_churn() -> None:
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery, seed=31)
        for _ in range(30):
            await c.add(topics=("txs",))
        await c.connect_random(degree=2)
        await c.wait_for(lambda: all(host_of(n).router.mesh["txs"] for n in c.nodes))
        churners = c.nodes[27:]  # 3 of 30
        stable = c.nodes[:27]
        ids: list[bytes] = []
        for k in range(1000):
            publisher = stable[k % len(stable)]
            ids.append(host_of(publisher).publish("txs", b"tx %d" % k))
            if k % 25 == 0:
                await trio.sleep(0.01)
            if k == 300:
                for n in churners:
                    c.stop(n)
            if k == 600:
                for n in churners:
                    await c.start(n, ("txs",), None)
                    await host_of(n).dial("127.0.0.1", stable[0].port)
        want = set(ids)

        def delivered(n: Node) -> float:
            mine = {i for i in ids if host_of(n).router.seen.get(i) is not None}
            return len(mine & want) / len(want)

        await c.wait_for(lambda: all(delivered(n) >= 0.999 for n in stable), timeout_s=30)
        assert all(delivered(n) >= 0.999 for n in stable)
        # the churned nodes got what was published after they came back
        late = set(ids[700:])
        for n in churners:
            await c.wait_for(lambda n=n: late <= set(n.received.get("txs", {})), timeout_s=15)
        nursery.cancel_scope.cancel()


async def test_invalid_block_sender_is_scored_down_disconnected_and_banned() -> None:
    saved: list[tuple[str, float]] = []
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery, seed=5)
        honest = [await c.add() for _ in range(4)]
        bad = await c.add(validator=None)
        for i, n in enumerate(honest):
            await host_of(n).dial("127.0.0.1", honest[(i + 1) % 4].port)
        host_of(honest[0])._save_ban = lambda ip, until: saved.append((ip, until))
        await host_of(bad).dial("127.0.0.1", honest[0].port)
        await c.wait_for(lambda: host_of(bad).router.mesh["blocks"])
        for k in range(5):
            host_of(bad).publish("blocks", b"bad block %d" % k)
        await c.wait_for(lambda: host_of(bad).peer_id not in host_of(honest[0]).connected())
        assert host_of(honest[0]).metrics.disconnected_for_score >= 1
        assert saved and saved[0][0] == "127.0.0.1"
        # nothing invalid was forwarded, and honest traffic still flows
        assert all(not n.received.get("blocks") for n in honest)
        mid = host_of(honest[2]).publish("blocks", b"good block")
        await c.wait_for(lambda: all(mid in n.received["blocks"] for n in honest if n != honest[2]))
        nursery.cancel_scope.cancel()


async def attacker_session(target: Node, topic: str) -> tuple[SecureSession, NodeKeys]:
    keys = NodeKeys.generate()
    session = await connect("127.0.0.1", target.port, keys, GENESIS)
    hello = rpc(subscriptions=(Subscription(topic=topic, subscribe=True),), graft=(topic,))
    await session.send_frame(FrameKind.GOSSIP, hello.encode())
    return session, keys


async def test_duplicate_flooder_is_throttled_and_dropped() -> None:
    validated: list[bytes] = []

    async def counting(_topic: str, data: bytes, _source: bytes) -> Validation:
        validated.append(data)
        return Validation.ACCEPT

    async with trio.open_nursery() as nursery:
        c = Cluster(nursery, seed=6)
        target = await c.add(validator=counting)
        other = await c.add()
        await host_of(other).dial("127.0.0.1", target.port)
        await c.wait_for(lambda: host_of(target).router.mesh["blocks"])
        session, _ = await attacker_session(target, "blocks")
        msg = Message(topic="blocks", data=b"the same block")
        flood = rpc(messages=(msg,) * 200)
        # the target may hang up on the flooder before it is done
        with trio.move_on_after(10), contextlib.suppress(ConnectionClosed):
            for _ in range(50):
                await session.send_frame(FrameKind.GOSSIP, flood.encode())
        await c.wait_for(lambda: len(host_of(target).connected()) == 1)
        assert validated.count(b"the same block") == 1  # validated once, not 10,000 times
        stats = host_of(target).router.stats
        assert stats.repeats > 0 and stats.graylisted_rpcs > 0
        await session.aclose()
        # honest delivery unaffected
        await c.wait_for(lambda: msg.message_id() in other.received["blocks"])
        mid = host_of(other).publish("blocks", b"next block")
        await c.wait_for(lambda: mid in target.received["blocks"])
        nursery.cancel_scope.cancel()


async def test_ihave_liar_loses_score_and_its_gossip_is_ignored() -> None:
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery, seed=7)
        target = await c.add()
        session, keys = await attacker_session(target, "blocks")
        liar = peer_id(keys.identity.public_key)
        router = host_of(target).router
        for k in range(40):
            fake = tuple(bytes([k, j]) * 16 for j in range(4))
            ihave = rpc(ihave=(IHave(topic="blocks", ids=fake),))
            await session.send_frame(FrameKind.GOSSIP, ihave.encode())
            await trio.sleep(0.11)  # one IHAVE per heartbeat
            if router.peer_score(liar, trio.current_time()) < router.score.params.gossip_threshold:
                break
        assert router.stats.broken_promises >= 5
        assert router.peer_score(liar, trio.current_time()) < router.score.params.gossip_threshold
        ignored = router.stats.ihave_ignored
        await session.send_frame(FrameKind.GOSSIP, ihave.encode())
        await c.wait_for(lambda: router.stats.ihave_ignored > ignored)
        await session.aclose()
        nursery.cancel_scope.cancel()


async def test_inbound_slots_evict_and_bans_persist_in_the_store(tmp_path: object) -> None:
    store = ChainStore(f"{tmp_path}/chain", make_genesis(make_keys(2)))
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery, seed=8)
        small = dataclasses.replace(CONFIG, max_inbound=3, max_peers=4)
        hub = await c.add(config=small)
        host_of(hub)._save_ban = lambda ip, until: save_ban(store, ip, until)
        leaves = [await c.add() for _ in range(5)]
        for leaf in leaves:
            await host_of(leaf).dial("127.0.0.1", hub.port)
        await c.wait_for(lambda: host_of(hub).metrics.evicted == 2)
        # the 4th and 5th each evicted an unprotected inbound peer (the
        # oldest of the netgroup and the longest-connected half are kept)
        assert len(host_of(hub).connected()) == 3
        assert host_of(leaves[4]).peer_id in host_of(hub).connected()
        assert host_of(leaves[0]).peer_id in host_of(hub).connected()
        host_of(hub).ban("127.0.0.1", 600)
        nursery.cancel_scope.cancel()
    bans = load_bans(store, 0.0)
    assert "127.0.0.1" in bans
    # a new host loaded with the stored bans refuses the banned address
    async with trio.open_nursery() as nursery:
        host = Host(NodeKeys.generate(), GENESIS, CONFIG, bans=load_bans(store, time.time()))
        port = await nursery.start(host.run)
        other = Host(NodeKeys.generate(), GENESIS, CONFIG)
        await nursery.start(other.run)
        with pytest.raises(NetError):
            await other.dial("127.0.0.1", port)
        assert host.metrics.rejected.get("conn-banned", 0) >= 1
        assert not host.connected()
        nursery.cancel_scope.cancel()
    store.close()


async def test_dial_loop_redials_a_bootstrap_peer_and_keepalive_drops_a_silent_one() -> None:
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery, seed=9)
        late = Node(NodeKeys.generate(), CONFIG)
        # reserve a port for a peer that is not up yet
        probe = await trio.open_tcp_listeners(0, host="127.0.0.1")
        late_port = probe[0].socket.getsockname()[1]
        await probe[0].aclose()
        cfg = dataclasses.replace(
            CONFIG,
            bootstrap=(("127.0.0.1", late_port),),
            dial_interval_s=0.05,
            keepalive_s=0.2,
            ping_timeout_s=0.3,
        )
        dialer = await c.add(config=cfg)
        await trio.sleep(0.3)
        failures = host_of(dialer).table.failures.get(f"127.0.0.1:{late_port}", 0)
        assert failures >= 1  # tried, failed, backing off
        late.config = dataclasses.replace(CONFIG, listen_port=late_port)
        await c.start(late, ("blocks",), None)
        await c.wait_for(lambda: host_of(late).peer_id in host_of(dialer).connected(), 15)
        assert f"127.0.0.1:{late_port}" not in host_of(dialer).table.failures
        # a peer that never answers pings is dropped by the keepalive
        silent = await connect("127.0.0.1", dialer.port, NodeKeys.generate(), GENESIS)
        assert peer_id(silent.remote.identity_key) == host_of(dialer).peer_id
        await c.wait_for(lambda: len(host_of(dialer).connected()) == 2)
        await c.wait_for(lambda: len(host_of(dialer).connected()) == 1, 5)
        assert host_of(late).peer_id in host_of(dialer).connected()  # it answers pings
        await silent.aclose()
        nursery.cancel_scope.cancel()


async def test_simultaneous_dials_converge_on_one_connection() -> None:
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery, seed=10)
        for _ in range(5):
            a, b = await c.add(), await c.add()
            async with trio.open_nursery() as both:
                both.start_soon(host_of(a).dial, "127.0.0.1", b.port)
                both.start_soon(host_of(b).dial, "127.0.0.1", a.port)
            await trio.sleep(0.2)
            assert host_of(a).connected() == [host_of(b).peer_id]
            assert host_of(b).connected() == [host_of(a).peer_id]
            rtt = await host_of(a).conns[host_of(b).peer_id].peer.ping()
            assert rtt > 0
        nursery.cancel_scope.cancel()


async def test_malformed_gossip_frame_closes_the_session_and_bans_the_sender() -> None:
    saved: list[str] = []
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery, seed=11)
        target = await c.add()
        host_of(target)._save_ban = lambda ip, _until: saved.append(ip)
        session, _ = await attacker_session(target, "blocks")
        await c.wait_for(lambda: len(host_of(target).connected()) == 1)
        await session.send_frame(FrameKind.GOSSIP, b"\xff" * 40)  # not an RPC
        await c.wait_for(lambda: not host_of(target).connected())
        assert saved == ["127.0.0.1"]
        assert host_of(target).table.is_banned("127.0.0.1", time.time())
        await session.aclose()
        nursery.cancel_scope.cancel()
