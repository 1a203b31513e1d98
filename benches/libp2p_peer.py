"""py-libp2p (PyPI ``libp2p`` 0.8.1) driven as a fairly configured benchmark baseline.

bcai does not depend on libp2p: this module is only imported by benchmarks when the optional
``bench`` extra is installed. Everything runs under trio in the current process on 127.0.0.1.

Common configuration (what "fair" means here):

* Security: Noise only (``/noise``, Noise_XX_25519_ChaChaPoly_SHA256, Ed25519 identities). The
  plaintext, secio and TLS transports that ``libp2p.new_host`` offers by default are not
  registered, so nothing can negotiate down to them.
* Muxer: yamux only (``/yamux/1.0.0``, go-yamux-style receive window auto-tuning up to 16 MiB);
  mplex is not registered.
* Transport: TCP only (trio sets ``TCP_NODELAY``); no QUIC, mDNS, UPnP or bootstrap.
* Connections are made with ``Swarm.dial_addr`` on the single known multiaddr. ``Swarm.dial_peer``
  (used by ``host.connect``) runs a happy-eyeballs loop that waits the full 250 ms
  ``_HAPPY_EYEBALLS_DELAY`` after starting the dial of the *only* address even when it succeeds
  (the wait is only cut short by a failure or by reaching ``max_connections_per_peer``), so
  every single-address connect would cost >= 250 ms. ``dial_addr`` runs the same
  TCP + multistream-select + Noise + multistream-select + yamux upgrade without that wait.
* The per-peer connection rate limiter of the default resource manager (10 connections/s,
  burst 50) is disabled, since the connect benchmark deliberately re-dials one peer.
* Yamux flow control with go-yamux semantics: py-libp2p's ``PY_YAMUX_RELEASE_ON_READ`` knob
  (read at call time, default on) sends a WINDOW_UPDATE after every read, e.g. after each
  1-byte read of a pubsub varint prefix, which tripled the frames per gossip message here and
  cost ~25 % of the gossip rate (stream throughput unchanged). The stream and gossip benchmarks
  run with it off (``0``), so credit is returned once half the window is consumed, as in
  go-yamux; the variable is restored afterwards.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from unittest import mock

import multiaddr  # type: ignore[import-untyped]
import trio
from libp2p import generate_new_ed25519_identity, new_host, new_swarm
from libp2p.abc import IHost, INetConn, INetStream, INetworkService
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as create_new_x25519_key_pair
from libp2p.custom_types import TMuxerOptions, TProtocol, TSecurityOptions
from libp2p.network.config import ConnectionConfig
from libp2p.network.swarm import Swarm
from libp2p.peer.id import ID
from libp2p.pubsub import pubsub as pubsub_module
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.rpc_queue import DefaultMaxMessageSize, RpcQueue
from libp2p.rcmgr import ResourceManager
from libp2p.rcmgr.connection_limits import new_connection_limits_with_defaults
from libp2p.security.noise.io import NoiseTransportReadWriter
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.tools.anyio_service import background_trio_service

LOCALHOST = multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")
THROUGHPUT_PROTOCOL = TProtocol("/bcai-bench/throughput/1.0.0")
GOSSIP_TOPIC = "bcai-bench"
CLOSING_HEADROOM = 64  # connections per peer allowed while earlier ones are still closing
SETUP_TIMEOUT = 30.0  # seconds, for anything that is not the measured operation


# --------------------------------------------------------------------------- configuration


def _noise_only(key_pair: KeyPair) -> TSecurityOptions:
    """Noise (XX) as the only security transport: no plaintext, secio or TLS fallback."""
    noise = NoiseTransport(key_pair, noise_privkey=create_new_x25519_key_pair().private_key)
    return {NOISE_PROTOCOL_ID: noise}


def _yamux_only() -> TMuxerOptions:
    return {TProtocol(YAMUX_PROTOCOL_ID): Yamux}


def _resource_manager(per_peer: int | None = None) -> ResourceManager:
    """The default resource manager minus the per-peer connection rate limiter.

    ``per_peer`` raises its limit of established connections per peer (default 8).
    """
    limits = new_connection_limits_with_defaults()
    if per_peer is not None:
        limits = limits.with_max_established_per_peer(per_peer)
    return ResourceManager(enable_rate_limiting=False, connection_limits=limits)


def _new_host() -> IHost:
    key_pair = generate_new_ed25519_identity()
    return new_host(
        key_pair=key_pair,
        sec_opt=_noise_only(key_pair),
        muxer_opt=_yamux_only(),
        resource_manager=_resource_manager(),
    )


def _new_swarm(per_peer: int) -> Swarm:
    """A bare swarm allowing ``per_peer`` simultaneous connections to one peer."""
    key_pair = generate_new_ed25519_identity()
    swarm = new_swarm(
        key_pair=key_pair,
        sec_opt=_noise_only(key_pair),
        muxer_opt=_yamux_only(),
        resource_manager=_resource_manager(per_peer),
        connection_config=ConnectionConfig(max_connections_per_peer=per_peer),
    )
    assert isinstance(swarm, Swarm)
    return swarm


def _listen_addr(network: INetworkService) -> multiaddr.Multiaddr:
    """The bound TCP address (port resolved) of a listening swarm."""
    addrs = [addr for listener in network.listeners.values() for addr in listener.get_addrs()]
    assert addrs, "swarm is not listening"
    return addrs[0]


def _assert_noise_yamux(conn: INetConn) -> None:
    muxed = conn.muxed_conn
    assert isinstance(muxed, Yamux), f"unexpected muxer {type(muxed).__name__}"
    channel = getattr(muxed.secured_conn, "conn", None)
    assert isinstance(channel, NoiseTransportReadWriter), f"not a Noise session: {channel!r}"


async def _dial(network: INetworkService, target: INetworkService) -> INetConn:
    """A fresh Noise+yamux connection to ``target`` on its single address, no 250 ms wait."""
    return await network.dial_addr(_listen_addr(target), target.get_peer_id())


def _go_yamux_window_updates() -> contextlib.AbstractContextManager[object]:
    """Turn ``PY_YAMUX_RELEASE_ON_READ`` off for the duration (see the module docstring)."""
    return mock.patch.dict(os.environ, {"PY_YAMUX_RELEASE_ON_READ": "0"})


@contextlib.asynccontextmanager
async def _running_host(host: IHost) -> AsyncIterator[IHost]:
    async with host.run([LOCALHOST]):
        await _stop_auto_connector(host.get_network())
        yield host


@contextlib.asynccontextmanager
async def _running_swarm(swarm: Swarm) -> AsyncIterator[Swarm]:
    async with background_trio_service(swarm):
        await _stop_auto_connector(swarm)
        yield swarm


async def _stop_auto_connector(network: INetworkService) -> None:
    """Stop the swarm's auto-connector, so that the benchmark alone decides the connections.

    With fewer connections than its watermarks (50/100) it dials every peer in the peerstore
    that it is not connected to, periodically and after every disconnect: it would re-dial
    peers that a benchmark has just disconnected, and race the teardown.
    """
    assert isinstance(network, Swarm)
    await network.auto_connector.stop()


# --------------------------------------------------------------------------- connect rate


async def _echo_one_byte(stream: INetStream) -> None:
    with contextlib.suppress(Exception):
        await stream.write(await stream.read(1))
        await stream.close()


async def libp2p_connect_rate(n: int) -> list[float]:
    """Set up ``n`` connections one after another and return each setup time in seconds.

    Configuration: two bare swarms (``libp2p.new_swarm``, libp2p's connection layer without host
    services such as Identify, which would otherwise run an extra protocol exchange on every
    connection in the same process), Noise only, yamux only, TCP on 127.0.0.1, connection rate
    limiter off. Each sample is a real new connection: ``Swarm.dial_addr`` always opens a new TCP
    socket (it does not reuse connections per peer) and runs multistream-select for the security
    protocol, the Noise XX handshake, multistream-select for the muxer and starts yamux. The
    clock runs from the call of ``dial_addr`` until it returns the registered connection, at
    which point a stream can be opened (yamux opens streams without a round trip). Dialling the
    single multiaddr through ``dial_addr`` avoids the 250 ms happy-eyeballs wait of
    ``dial_peer``/``host.connect`` (see the module docstring).

    After the clock stops, and outside the measurement, every connection is checked to be Noise
    over yamux and usable (a stream is opened and one byte echoed), then closed before the next
    dial, so every sample starts from an idle process. py-libp2p's close sleeps 2 x 100 ms
    (``SwarmConn._cleanup`` and ``Yamux.close``), so the loop takes ~0.2 s per sample of
    wall-clock time, nearly all idle. (Closing in the background instead made the samples
    ~40 % slower through overlapping close work and per-connection bookkeeping.)
    """
    if n < 1:
        raise ValueError("n must be >= 1")
    # The listener's side of a connection may still be in its 200 ms close when the next one
    # arrives: allow more than the defaults (3 per peer in ConnectionConfig, 8 in the resource
    # manager), so that the swarm never trims (closes) the connection just dialled.
    listener, dialer = _new_swarm(CLOSING_HEADROOM), _new_swarm(CLOSING_HEADROOM)
    listener.set_stream_handler(_echo_one_byte)
    samples: list[float] = []
    async with _running_swarm(listener), _running_swarm(dialer):
        await listener.listen(LOCALHOST)
        addr, peer_id = _listen_addr(listener), listener.get_peer_id()
        for _ in range(n):
            start = time.perf_counter()
            conn = await dialer.dial_addr(addr, peer_id)
            samples.append(time.perf_counter() - start)
            with trio.fail_after(SETUP_TIMEOUT):
                _assert_noise_yamux(conn)
                stream = await conn.new_stream()
                await stream.write(b"\x2a")
                assert await stream.read(1) == b"\x2a"
                await stream.close()
                await conn.close()
    return samples


# --------------------------------------------------------------------------- stream throughput


async def libp2p_stream_throughput(total_bytes: int, chunk: int = 1 << 20) -> float:
    """Send ``total_bytes`` over one Noise+yamux stream; return seconds from start to ack.

    Configuration: two hosts (``libp2p.new_host``), Noise only, yamux only (window auto-tuning
    up to 16 MiB as in go-yamux), TCP on 127.0.0.1. The connection and the stream (with its
    multistream-select negotiation of a benchmark protocol) are set up before the clock starts,
    and the background Identify exchange the host runs on a new connection is waited for, so it
    does not overlap the measurement. The sender writes ``chunk``-byte (default 1 MiB) buffers;
    the receiver counts bytes as they arrive (``read()`` of whatever is buffered) and, once all
    have arrived, writes back the 8-byte count. The clock runs from the first write until that
    acknowledgement is read; the count is checked to equal ``total_bytes``.
    """
    if total_bytes < 1 or chunk < 1:
        raise ValueError("total_bytes and chunk must be >= 1")
    payload = os.urandom(chunk)
    received = 0

    async def sink(stream: INetStream) -> None:
        nonlocal received
        while received < total_bytes:
            data = await stream.read()
            if not data:
                break
            received += len(data)
        await stream.write(received.to_bytes(8, "big"))
        await stream.close()

    listener, dialer = _new_host(), _new_host()
    listener.set_stream_handler(THROUGHPUT_PROTOCOL, sink)
    with _go_yamux_window_updates():
        elapsed = await _throughput_run(listener, dialer, payload, total_bytes)
    assert received == total_bytes, (received, total_bytes)
    return elapsed


async def _throughput_run(
    listener: IHost, dialer: IHost, payload: bytes, total_bytes: int
) -> float:
    chunk = len(payload)
    async with _running_host(listener), _running_host(dialer):
        with trio.fail_after(SETUP_TIMEOUT):
            conn = await _dial(dialer.get_network(), listener.get_network())
            _assert_noise_yamux(conn)
            await _wait_identified(dialer, listener.get_id())
            await _wait_identified(listener, dialer.get_id())
            stream = await dialer.new_stream(listener.get_id(), [THROUGHPUT_PROTOCOL])
        start = time.perf_counter()
        sent = 0
        while sent < total_bytes:
            piece = payload if total_bytes - sent >= chunk else payload[: total_bytes - sent]
            await stream.write(piece)
            sent += len(piece)
        ack = b""
        while len(ack) < 8:
            ack += await stream.read(8 - len(ack))
        elapsed = time.perf_counter() - start
        await stream.close()
        await _disconnect_all([dialer, listener])  # else host teardown leaks the socket
    count = int.from_bytes(ack, "big")
    assert count == total_bytes, (count, total_bytes)
    return elapsed


async def _wait_identified(host: IHost, peer_id: ID) -> None:
    """Wait until ``host`` has run Identify against ``peer_id`` (its protocols are known)."""
    while True:
        with contextlib.suppress(Exception):
            if host.get_peerstore().get_protocols(peer_id):
                return
        await trio.sleep(0.01)


# --------------------------------------------------------------------------- gossip


def _gossipsub_v11_spec() -> GossipSub:
    """GossipSub speaking only ``/meshsub/1.1.0`` with the gossipsub v1.1 spec defaults.

    py-libp2p's own defaults differ (120 s heartbeat, and the constructor requires D values).
    Set here: D=6, D_lo=4, D_hi=12, heartbeat 1 s (first after 100 ms, as go-libp2p-pubsub),
    fanout TTL 60 s, message cache 5 windows with gossip over 3, prune backoff 60 s, no peer
    exchange. D_lazy is not a parameter; with adaptive gossip off py-libp2p emits IHAVE to
    max(6, 0.25 x non-mesh peers), i.e. D_lazy=6 and gossip factor 0.25 as in the spec.
    Switched off because they are py-libp2p extensions that drop or reshape traffic:
    ``spam_protection_enabled`` (drops a forwarder's messages beyond 10 per second per topic),
    ``adaptive_gossip_enabled`` (rewrites D_lo/D_hi and the gossip factor from a health score)
    and ``eclipse_protection_enabled`` (wants meshes spanning >= 3 IPs, impossible on loopback).
    Peer scoring stays at py-libp2p's defaults: all weights 0 and thresholds at -inf, so it never
    gates anything.
    """
    return GossipSub(
        protocols=[PROTOCOL_ID_V11],
        degree=6,
        degree_low=4,
        degree_high=12,
        time_to_live=60,
        gossip_window=3,
        gossip_history=5,
        heartbeat_initial_delay=0.1,
        heartbeat_interval=1,
        do_px=False,
        prune_back_off=60,
        unsubscribe_back_off=10,
        adaptive_gossip_enabled=False,
        spam_protection_enabled=False,
        eclipse_protection_enabled=False,
    )


def _topology(n_nodes: int) -> set[tuple[int, int]]:
    """A connected circulant graph: ring (i, i+1) plus chords (i, i+s), s ~ sqrt(n).

    Every node has degree 4 when n_nodes >= 5 (fewer for smaller n), diameter ~ n / (2 s).
    """
    edges: set[tuple[int, int]] = set()
    chord = max(2, round(math.sqrt(n_nodes)))
    for i in range(n_nodes):
        for step in (1, chord):
            j = (i + step) % n_nodes
            if i != j:
                edges.add((min(i, j), max(i, j)))
    return edges


class _LargeRpcQueue(RpcQueue):
    """Per-peer outbound pubsub queue large enough for a whole benchmark burst."""

    capacity = 1 << 16

    def __init__(
        self, max_size: int | None = None, max_message_size: int = DefaultMaxMessageSize
    ) -> None:
        super().__init__(max_size or self.capacity, max_message_size)


@contextlib.contextmanager
def _no_queue_drops(n_messages: int) -> Iterator[None]:
    """Size pubsub's bounded queues for the burst instead of dropping from them.

    py-libp2p (like go-libp2p-pubsub) drops an outbound RPC when a peer's 32-entry queue is full
    and drops a delivery when a subscription's 32-entry channel is full. Python drains them far
    more slowly than Go, so a burst of publishes would be dropped rather than merely queued.
    Both sizes are module-level in ``libp2p.pubsub.pubsub``; they are raised here only for the
    duration of the benchmark and restored afterwards.
    """
    size = max(1 << 16, 4 * n_messages)
    with (
        mock.patch.object(_LargeRpcQueue, "capacity", size),
        mock.patch.object(pubsub_module, "RpcQueue", _LargeRpcQueue),
        mock.patch.object(pubsub_module, "SUBSCRIPTION_CHANNEL_SIZE", size),
    ):
        yield


async def _wait_meshes(
    routers: list[GossipSub], ids: list[ID], neighbours: list[set[int]], topic: str
) -> None:
    """Wait until every node's mesh for ``topic`` holds exactly its neighbours.

    With degree <= D_hi and D_lo = 4 >= degree, the spec mesh keeps every neighbour.
    """
    while True:
        if all(
            router.mesh.get(topic, set()) == {ids[j] for j in neighbours[i]}
            for i, router in enumerate(routers)
        ):
            return
        await trio.sleep(0.02)


async def _disconnect_all(hosts: list[IHost]) -> None:
    """Close every connection before the services stop.

    ``host.run`` stops without closing established connections (their sockets leak, with a
    ``ResourceWarning``), and stopping a ``Pubsub`` service while its peers still send to it
    makes its read loop (which runs in the swarm's nursery) spawn onto the closed service
    nursery and crash the host with "Nursery is closed to new arrivals". Closing the
    connections first avoids both.
    """

    async def disconnect(host: IHost) -> None:
        for peer_id in list(host.get_network().connections):
            with contextlib.suppress(Exception):
                await host.disconnect(peer_id)

    with trio.move_on_after(SETUP_TIMEOUT):
        async with trio.open_nursery() as nursery:
            for host in hosts:
                nursery.start_soon(disconnect, host)


async def libp2p_gossip_rate(n_nodes: int, n_messages: int, payload: int = 256) -> float:
    """Flood ``n_messages`` distinct messages through GossipSub; return the seconds taken.

    Configuration: ``n_nodes`` hosts as in :func:`libp2p_stream_throughput` (Noise, yamux, TCP),
    each with ``Pubsub`` (strict signing on and peer+seqno message ids, both the spec/go
    defaults) and the spec-configured ``/meshsub/1.1.0`` router of
    :func:`_gossipsub_v11_spec`. Every node subscribes to one topic, then the nodes are wired as
    :func:`_topology` (a ring plus chords, degree ~4; dials use ``dial_addr``, see module
    docstring) and the benchmark waits until every mesh contains all of that node's neighbours.
    Queues that would drop a burst are enlarged (:func:`_no_queue_drops`); the per-topic rate
    limiter is off; yamux returns credit as go-yamux does (module docstring). Node 0 then
    publishes ``n_messages`` messages of ``payload`` bytes (an 8-byte index, then random bytes).
    The clock runs from the first publish until every other node has received every message
    through its subscription; each node checks it got each index exactly once, with the right
    size. Raises ``trio.TooSlowError`` if delivery does not finish within ``SETUP_TIMEOUT`` plus
    20 ms per message per node. All nodes share this process and its single trio thread, so the
    result is the aggregate CPU cost of all of them, not the latency of a distributed network.
    py-libp2p has no flood publishing (the spec's default for a node's own messages); that makes
    no difference here, as every neighbour of the publisher is in its mesh.
    """
    if n_nodes < 2 or n_messages < 1 or payload < 8:
        raise ValueError("need n_nodes >= 2, n_messages >= 1, payload >= 8")
    edges = _topology(n_nodes)
    neighbours: list[set[int]] = [set() for _ in range(n_nodes)]
    for i, j in edges:
        neighbours[i].add(j)
        neighbours[j].add(i)
    filler = os.urandom(payload - 8)
    done_at: list[float] = [math.nan] * n_nodes
    all_done = trio.Event()
    remaining = n_nodes - 1

    async def consume(index: int, sub_get: Callable[[], Awaitable[rpc_pb2.Message]]) -> None:
        nonlocal remaining
        seen = bytearray(n_messages)
        for _ in range(n_messages):  # node 0, the publisher, gets its own copies
            msg = await sub_get()
            assert len(msg.data) == payload and msg.data[8:] == filler
            k = int.from_bytes(msg.data[:8], "big")
            assert not seen[k], f"node {index} got message {k} twice"
            seen[k] = 1
        if index != 0:
            done_at[index] = time.perf_counter()
            remaining -= 1
            if remaining == 0:
                all_done.set()

    with _no_queue_drops(n_messages), _go_yamux_window_updates():
        hosts = [_new_host() for _ in range(n_nodes)]
        routers = [_gossipsub_v11_spec() for _ in range(n_nodes)]
        pubsubs = [Pubsub(host, router) for host, router in zip(hosts, routers, strict=True)]
        ids = [host.get_id() for host in hosts]
        async with contextlib.AsyncExitStack() as stack:
            for host, ps, router in zip(hosts, pubsubs, routers, strict=True):
                await stack.enter_async_context(_running_host(host))
                await stack.enter_async_context(background_trio_service(ps))
                await stack.enter_async_context(background_trio_service(router))
            nursery = await stack.enter_async_context(trio.open_nursery())
            with trio.fail_after(SETUP_TIMEOUT):
                for index, ps in enumerate(pubsubs):
                    await ps.wait_until_ready()
                    sub = await ps.subscribe(GOSSIP_TOPIC)
                    nursery.start_soon(consume, index, sub.get)
                async with trio.open_nursery() as dials:
                    for i, j in sorted(edges):
                        dials.start_soon(_dial, hosts[i].get_network(), hosts[j].get_network())
                await _wait_meshes(routers, ids, neighbours, GOSSIP_TOPIC)
            for i, host in enumerate(hosts):
                connected = set(host.get_network().connections)
                assert connected == {ids[j] for j in neighbours[i]}, f"node {i}: extra links"
            start = time.perf_counter()
            with trio.fail_after(SETUP_TIMEOUT + 0.02 * n_messages * n_nodes):
                for k in range(n_messages):
                    await pubsubs[0].publish(GOSSIP_TOPIC, k.to_bytes(8, "big") + filler)
                await all_done.wait()
            await _disconnect_all(hosts)
    return max(done_at[1:]) - start


# --------------------------------------------------------------------------- smoke run


def _main() -> None:
    samples = trio.run(libp2p_connect_rate, 100)
    p50 = statistics.median(samples)
    print(
        f"connect: n={len(samples)} p50={p50 * 1e3:.2f} ms "
        f"p90={statistics.quantiles(samples, n=10)[-1] * 1e3:.2f} ms "
        f"rate={len(samples) / sum(samples):.0f} conn/s"
    )
    total = 64 << 20
    seconds = trio.run(libp2p_stream_throughput, total)
    print(f"stream: {total >> 20} MiB in {seconds:.3f} s = {total / seconds / 1e6:.1f} MB/s")
    n_nodes, n_messages = 10, 500
    seconds = trio.run(libp2p_gossip_rate, n_nodes, n_messages)
    print(
        f"gossip: {n_nodes} nodes x {n_messages} msgs of 256 B in {seconds:.3f} s = "
        f"{n_messages / seconds:.0f} msgs/s"
    )


if __name__ == "__main__":
    _main()
