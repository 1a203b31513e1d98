"""Reachability probes between real hosts on 127.0.0.1: the peer's dial-back
reaches our listener, and the connection we asked on survives it."""

from __future__ import annotations

import pytest
import trio

from bcai.net import NodeKeys
from bcai.net._autonat import AutoNat, Reach
from bcai.net._host import Host
from bcai.net._identity import peer_id
from tests.net.cluster import CONFIG, GENESIS


def ordered_keys(server_smaller: bool) -> tuple[NodeKeys, NodeKeys]:
    """(server, client) keys whose peer ids compare as asked — the
    simultaneous-dial rule keeps the connection dialed by the smaller id."""
    while True:
        server, client = NodeKeys.generate(), NodeKeys.generate()
        ids = [peer_id(k.identity.public_key) for k in (server, client)]
        if (ids[0] < ids[1]) == server_smaller:
            return server, client


@pytest.mark.parametrize("server_smaller", [True, False], ids=["server-smaller", "client-smaller"])
async def test_a_dial_back_keeps_the_connection_it_was_asked_on(server_smaller: bool) -> None:
    """Before, when the server's id was the smaller, the dial-back replaced
    the client's connection (as if both had dialed at once), the server hung
    up on it at once, and the probe's own request failed: reachability
    'unknown' and the peer lost on every probe."""
    server_keys, client_keys = ordered_keys(server_smaller)
    async with trio.open_nursery() as nursery:
        server, client = Host(server_keys, GENESIS, CONFIG), Host(client_keys, GENESIS, CONFIG)
        port = await nursery.start(server.run)
        await nursery.start(client.run)
        AutoNat(server)
        probe = AutoNat(client)
        pid = await client.dial("127.0.0.1", port)
        before = client.conns[pid]
        for _ in range(3):
            result = await probe.probe()
            assert result.status == Reach.PUBLIC, result
            assert result.inconclusive == [] and result.successes == 1
            assert client.conns.get(pid) is before  # the same connection throughout
            assert await before.peer.request("net/observed", b"")  # and it still works
        assert client.metrics.rejected.get("conn-duplicate", 0) == 3  # the dial-backs
        nursery.cancel_scope.cancel()
