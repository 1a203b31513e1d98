"""Peer exchange and the address book over real TCP: learning, dialing from
the book, feelers, persistence, and a peer advertising thousands of fakes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import trio

from bcai.net import NodeKeys, RequestFailed
from bcai.net._addrman import NetAddr
from bcai.net._discovery import AddrList, Discovery, DiscoveryConfig
from bcai.net._host import Host
from bcai.net._identity import peer_id
from bcai.store import ChainStore, load_addrbook, save_addrbook
from tests.chain.builder import make_genesis, make_keys
from tests.net.cluster import CONFIG, GENESIS, Cluster, Node

LOCAL = DiscoveryConfig(allow_local=True)


def host_of(node: Node):  # type: ignore[no-untyped-def]
    assert node.host is not None
    return node.host


async def test_a_node_learns_peers_by_exchange_and_dials_them_from_the_book() -> None:
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery, seed=40)
        cfg = dataclasses.replace(CONFIG, target_outbound=2, dial_interval_s=0.05)
        a, b = await c.add(config=cfg), await c.add()
        others = [await c.add() for _ in range(3)]
        da = Discovery(host_of(a), LOCAL)
        db = Discovery(host_of(b), LOCAL)
        for other in others:  # b learns their listen addresses
            await host_of(other).dial("127.0.0.1", b.port)
        await c.wait_for(lambda: all(host_of(o).peer_id in host_of(b).connected() for o in others))

        def known(book_of: Discovery) -> list[Node]:
            return [o for o in others if NetAddr("127.0.0.1", o.port) in book_of.book]

        # all three share one bucket here, so a slot collision drops one now and then
        await c.wait_for(lambda: bool(known(db)))
        await host_of(a).dial("127.0.0.1", b.port)  # a asks b at once (outbound)
        await c.wait_for(lambda: da.stats.pex_learned >= 1)
        learned = known(da)  # from b's reply: what b knew, less a's slot collisions
        assert learned and all(o in known(db) for o in learned)
        assert da.stats.pex_learned == len(learned)
        assert NetAddr("127.0.0.1", a.port) not in da.book  # never our own address

        # the dial loop takes one of them from the book; the success moves it to tried
        def dialed() -> list[Node]:
            return [o for o in learned if host_of(o).peer_id in host_of(a).connected()]

        await c.wait_for(lambda: bool(dialed()), 10)
        d = dialed()[0]
        await c.wait_for(lambda: da.book.find(NetAddr("127.0.0.1", d.port)).tried, 5)
        # asking again too soon is refused with a reason
        with pytest.raises(RequestFailed) as err:
            await host_of(a).request(host_of(b).peer_id, "pex/addrs", b"")
        assert err.value.code == "pex-too-soon"
        nursery.cancel_scope.cancel()


async def test_thousands_of_fake_addresses_stay_in_their_buckets() -> None:
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery, seed=41)
        victim, liar = await c.add(), await c.add()
        dv = Discovery(host_of(victim), LOCAL)
        rounds = iter(range(10))

        async def fakes(_peer: bytes, _body: bytes) -> bytes:
            r = next(rounds)
            addrs = [f"{1 + (i * 7 + r) % 200}.{i % 250}.{r}.9:8333" for i in range(1000)]
            return AddrList(addrs=tuple(addrs)).encode()

        host_of(liar).handle("pex/addrs", fakes)
        lid = await host_of(victim).dial("127.0.0.1", liar.port)
        learned = 0
        for _ in range(10):
            learned += await dv.exchange(lid)
        assert learned > 1000  # it took many (one source may claim 64 buckets)...
        assert len(dv.book.new_buckets_used()) <= 64  # ...but only 64 of 1024 buckets
        assert dv.book.counts()[1] == 0  # and nothing of it reached the tried table
        assert len(dv.book) <= 64 * 64
        nursery.cancel_scope.cancel()


async def test_feelers_test_the_book_and_it_survives_a_restart(tmp_path: Path) -> None:
    store = ChainStore(tmp_path / "chain", make_genesis(make_keys(1)))
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery, seed=42)
        a, live = await c.add(), await c.add()
        disc = Discovery(
            host_of(a),
            LOCAL,
            load=lambda: load_addrbook(store),
            save=lambda data: save_addrbook(store, data),
        )
        assert disc.learn(f"127.0.0.1:{live.port}", "127.0.0.5")
        # a port nothing listens on; both addresses share a bucket (same
        # groups), and one port in 64 lands on the live one's slot, where the
        # book keeps the incumbent (Bitcoin's rule): take another port then
        for _ in range(10):
            probe = await trio.open_tcp_listeners(0, host="127.0.0.1")
            dead_port = probe[0].socket.getsockname()[1]
            await probe[0].aclose()
            if disc.learn(f"127.0.0.1:{dead_port}", "127.0.0.5"):
                break
        else:
            raise AssertionError("no free slot for a second address in 10 ports")
        results = [await disc.feeler() for _ in range(6)]
        assert True in results and False in results
        assert disc.book.find(NetAddr("127.0.0.1", live.port)).tried
        assert not disc.book.find(NetAddr("127.0.0.1", dead_port)).tried
        disc.save()
        nursery.cancel_scope.cancel()
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery, seed=43)
        again = Discovery(host_of(await c.add()), LOCAL, load=lambda: load_addrbook(store))
        assert NetAddr("127.0.0.1", live.port) in again.book
        assert again.book.find(NetAddr("127.0.0.1", live.port)).tried
        nursery.cancel_scope.cancel()
    store.close()


async def test_a_feeler_leaves_a_connected_peers_connection_alone() -> None:
    """An inbound peer's listen address goes into the book's new table; a
    feeler to it used to dial that peer, whose simultaneous-dial rule (when
    our id is the smaller) replaced its own connection with us by the
    feeler's, which we then closed: the peer lost us. Now the address is
    known alive without a dial."""
    while True:
        ours, theirs = NodeKeys.generate(), NodeKeys.generate()
        if peer_id(ours.identity.public_key) < peer_id(theirs.identity.public_key):
            break
    async with trio.open_nursery() as nursery:
        a, b = Host(ours, GENESIS, CONFIG), Host(theirs, GENESIS, CONFIG)
        port = await nursery.start(a.run)
        await nursery.start(b.run)
        disc = Discovery(a, LOCAL)
        await b.dial("127.0.0.1", port)  # b is inbound at a; a learns b's listen address
        with trio.fail_after(5):
            while b.peer_id not in a.conns:
                await trio.sleep(0.01)
        assert NetAddr("127.0.0.1", b.listen_port) in disc.book
        ours_before, theirs_before = a.conns[b.peer_id], b.conns[a.peer_id]
        assert await disc.feeler() is True
        await trio.sleep(0.3)  # time for a replaced connection to close
        assert a.conns.get(b.peer_id) is ours_before and b.conns.get(a.peer_id) is theirs_before
        assert b.metrics.connections_in == 0  # no feeler connection reached b
        assert disc.book.find(NetAddr("127.0.0.1", b.listen_port)).tried
        nursery.cancel_scope.cancel()
