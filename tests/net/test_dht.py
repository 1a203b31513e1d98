"""The DHT over real TCP on 127.0.0.1: tables filled by joining, exact
FIND_NODE results, provider records, clients that stay out of tables, and
bad requests with reason codes."""

from __future__ import annotations

import os

import pytest
import trio

from bcai.net import RequestFailed
from bcai.net._dht import Dht, content_key
from bcai.net._kademlia import (
    AddProvider,
    Contact,
    GetProviders,
    Providers,
    contact_to_record,
    xor_distance,
)
from tests.net.cluster import Cluster, Node


def host_of(node: Node):  # type: ignore[no-untyped-def]
    assert node.host is not None
    return node.host


async def dht_network(c: Cluster, n: int) -> list[Dht]:
    nodes = [await c.add(topics=()) for _ in range(n)]
    dhts = []
    for node in nodes:
        d = Dht(host_of(node), server=True)
        d.own_contact = Contact(host_of(node).peer_id, "127.0.0.1", node.port)
        dhts.append(d)
    for i, node in enumerate(nodes[1:], 1):
        await host_of(node).dial("127.0.0.1", nodes[(i * 7) % i].port)
    await c.wait_for(lambda: all(len(d.table) > 0 for d in dhts), 10)
    for d in dhts:  # each joins by looking itself up
        await d.find_node(d.host.peer_id)
    return dhts


async def test_find_node_returns_the_true_closest_servers() -> None:
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery, seed=50)
        dhts = await dht_network(c, 30)
        ids = [d.host.peer_id for d in dhts]
        for trial in range(5):
            target = os.urandom(32)
            asker = dhts[trial * 5]
            found = [x.peer_id for x in await asker.find_node(target)]
            others = sorted(
                (i for i in ids if i != asker.host.peer_id), key=lambda i: xor_distance(i, target)
            )
            assert found == others[:20]
            assert 1 <= asker.stats.hops <= 4
        nursery.cancel_scope.cancel()


async def test_providers_are_found_and_clients_stay_out_of_tables() -> None:
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery, seed=51)
        dhts = await dht_network(c, 12)
        client_node = await c.add(topics=())
        client = Dht(host_of(client_node), server=False)
        client.own_contact = Contact(host_of(client_node).peer_id, "127.0.0.1", client_node.port)
        await host_of(client_node).dial("127.0.0.1", host_of(c.nodes[0]).listen_port)
        await c.wait_for(lambda: len(client.table) > 0)
        key = content_key(b"model weights v1")
        assert await client.provide(key) >= 10  # accepted by the closest servers
        found = await dhts[5].find_providers(key)
        assert [p.peer_id for p in found] == [host_of(client_node).peer_id]
        # the client answered nothing, so no server put it in its table
        assert all(d.table.get(host_of(client_node).peer_id) is None for d in dhts)
        nursery.cancel_scope.cancel()


async def test_bad_dht_requests_get_reason_codes() -> None:
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery, seed=52)
        dhts = await dht_network(c, 3)
        a, b = dhts[0], dhts[1]
        pid = b.host.peer_id
        if pid not in a.host.conns:
            await a.host.dial("127.0.0.1", b.own_contact.port)  # type: ignore[union-attr]
        forged = AddProvider(
            key=bytes(32), provider=contact_to_record(Contact(pid, "127.0.0.1", 1))
        )
        cases = [
            ("dht/find_node", b"\x01", "dht-malformed"),
            ("dht/add_provider", forged.encode(), "dht-provider-mismatch"),
            ("dht/get_providers", b"", "dht-malformed"),
        ]
        for method, body, code in cases:
            with pytest.raises(RequestFailed) as err:
                await a.host.request(pid, method, body)
            assert err.value.code == code
        raw = await a.host.request(pid, "dht/get_providers", GetProviders(key=bytes(32)).encode())
        assert Providers.decode(raw).providers == ()
        assert pid in a.host.connected()  # bad requests are answered, not fatal
        nursery.cancel_scope.cancel()
