"""The host: one node's network presence. It listens and dials, applies the
connection policy (PeerTable) to live sessions, keeps peers alive with pings,
drives the gossip router, and routes requests to registered handlers.

Everything runs in the host's nursery (`run`). Queues are bounded: each peer
has a send queue of RPCs (a slow peer loses gossip, it never stalls others),
received messages wait for validation in one bounded queue, and accepted
messages wait for the application in one bounded channel per topic.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator

import trio

from bcai.net._errors import ConnectionClosed, NetError, PeerMisbehaved
from bcai.net._gossip import GossipRouter, Received, Validation
from bcai.net._gossip_wire import decode_rpc
from bcai.net._host_types import (
    DEFAULT_HOST,
    BanStore,
    Connection,
    Delivered,
    HostConfig,
    HostMetrics,
    PeerHandler,
    Validator,
    _encode_rpcs,
    _Started,
)
from bcai.net._identity import peer_id
from bcai.net._peer import Handler, Peer, RequestFailed
from bcai.net._policy import PeerInfo, PeerTable, duplicate_replaces
from bcai.net._session import FrameKind, NodeKeys, SecureSession, handshake
from bcai.net._sockets import dial_from, open_listener

log = logging.getLogger("bcai.net")


class Host:
    def __init__(
        self,
        keys: NodeKeys,
        genesis_id: bytes,
        config: HostConfig = DEFAULT_HOST,
        *,
        bans: dict[str, float] | None = None,
        save_ban: BanStore | None = None,
    ) -> None:
        """`bans` are those loaded from the store at start (ip -> until, wall
        seconds); `save_ban` persists new ones."""
        self.keys = keys
        self.peer_id = peer_id(keys.identity.public_key)
        self.genesis_id = genesis_id
        self.config = config
        self.table = PeerTable(
            max_peers=config.max_peers,
            max_inbound=config.max_inbound,
            max_per_ip=config.max_per_ip,
            max_per_subnet24=config.max_per_subnet24,
        )
        self.table.bans.update(bans or {})
        self._save_ban = save_ban
        self.router = GossipRouter(config.gossip, config.score, seed=config.seed)
        self.conns: dict[bytes, Connection] = {}
        self.handlers: dict[str, PeerHandler] = {}
        self.validators: dict[str, Validator] = {}
        self._topic_send: dict[str, trio.MemorySendChannel[Delivered]] = {}
        self.addresses: dict[tuple[str, int], bytes | None] = {a: None for a in config.bootstrap}
        self.metrics = HostMetrics()
        self._validate_send, self._validate_receive = trio.open_memory_channel[Received](
            config.validation_queue
        )
        self._nursery: trio.Nursery | None = None
        self._dialing: set[tuple[str, int]] = set()
        # peers we asked to dial us back (AutoNAT), with how many asks are open
        self._dialbacks: dict[bytes, int] = {}
        self.listen_port = 0
        self.advertise: tuple[str, ...] = config.advertise
        self.peer_changed = trio.Event()
        # RELAY frames go to the relay module when one is attached
        self.relay_frames: Callable[[bytes, bytes], Awaitable[None]] | None = None
        # an address book (discovery) may offer more addresses to dial, and
        # hear how each dial went
        self.dial_candidates: Callable[[int], list[tuple[str, int]]] | None = None
        self.on_dial_result: Callable[[str, int, bool], None] | None = None
        # called with (peer id, ip, its listen addresses, outbound) per session
        self.on_connect: list[Callable[[bytes, str, tuple[str, ...], bool], None]] = []

    # ------------------------------------------------------------ public API

    def handle(self, method: str, handler: PeerHandler) -> None:
        """Registers `handler(peer_id, body) -> body` for requests `method`;
        it raises RequestFailed(code) to answer with an error code."""
        self.handlers[method] = handler

    def subscribe(
        self, topic: str, validator: Validator | None = None
    ) -> trio.MemoryReceiveChannel[Delivered]:
        """Joins `topic`; accepted messages arrive on the returned channel.
        `validator(topic, data, source)` decides ACCEPT / IGNORE / REJECT
        before anything is forwarded (none: accept all)."""
        send, receive = trio.open_memory_channel[Delivered](self.config.topic_queue)
        self._topic_send[topic] = send
        if validator is not None:
            self.validators[topic] = validator
        self.router.subscribe(topic, trio.current_time())
        self._flush()
        return receive

    def publish(self, topic: str, data: bytes) -> bytes:
        """Publishes our own message (validate it first); returns its id."""
        mid = self.router.publish(topic, data, trio.current_time())
        self._flush()
        return mid

    async def request(
        self, peer: bytes, method: str, body: bytes, *, timeout_s: float = 10.0
    ) -> bytes:
        conn = self.conns.get(peer)
        if conn is None:
            raise RequestFailed("request-closed", "not connected to that peer")
        return await conn.peer.request(method, body, timeout_s=timeout_s)

    def connected(self) -> list[bytes]:
        return list(self.conns)

    def add_address(self, host: str, port: int) -> None:
        self.addresses.setdefault((host, port), None)

    async def disconnect(self, peer: bytes, reason: str, *, ban_s: float = 0.0) -> None:
        """Says goodbye with `reason`; with `ban_s`, bans the peer's IP too."""
        conn = self.conns.get(peer)
        if conn is None:
            return
        if ban_s > 0:
            self.ban(conn.info.ip, ban_s)
        await conn.peer.session.goodbye(reason)
        conn.scope.cancel()

    @contextlib.contextmanager
    def expecting_dialback(self, peer: bytes) -> Iterator[None]:
        """While open, a connection `peer` dials to us is the reachability
        dial-back we asked for, never a replacement (`duplicate_replaces`)."""
        self._dialbacks[peer] = self._dialbacks.get(peer, 0) + 1
        try:
            yield
        finally:
            self._dialbacks[peer] -= 1
            if not self._dialbacks[peer]:
                del self._dialbacks[peer]

    def ban(self, ip: str, seconds: float) -> None:
        until = time.time() + seconds
        self.table.ban(ip, time.time(), seconds)
        if self._save_ban is not None:
            self._save_ban(ip, until)

    # ------------------------------------------------------------ running

    async def run(self, *, task_status: _Started = trio.TASK_STATUS_IGNORED) -> None:
        """Listens, dials and gossips until cancelled; `nursery.start(host.run)`
        returns the listening port."""
        cfg = self.config
        listener = await open_listener(cfg.listen_host, cfg.listen_port, reuse_port=cfg.reuse_port)
        listeners = [listener]
        self.listen_port = listener.socket.getsockname()[1]
        self.advertise = cfg.advertise or (f"{cfg.listen_host}:{self.listen_port}",)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(trio.serve_listeners, self._inbound, listeners)
            nursery.start_soon(self._heartbeat_loop)
            nursery.start_soon(self._keepalive_loop)
            nursery.start_soon(self._dial_loop)
            for _ in range(4):
                nursery.start_soon(self._validation_worker)
            task_status.started(self.listen_port)

    async def dial(self, host: str, port: int) -> bytes:
        """Connects to host:port and keeps the connection in the background;
        returns the peer id once the session is up (or at once if that peer
        is connected already).

        Raises:
            NetError: the dial, the handshake or admission failed (its code).
        """
        assert self._nursery is not None, "dial() needs a running host"
        known = self.addresses.get((host, port))
        if known is not None and known in self.conns and self.conns[known].relayed_via is None:
            return known  # connected there already
        self.add_address(host, port)
        self._dialing.add((host, port))  # so the dial loop does not dial it too
        ready: trio.MemorySendChannel[bytes | NetError]
        ready, result = trio.open_memory_channel[bytes | NetError](1)
        self._nursery.start_soon(self._outbound, host, port, ready)
        outcome = await result.receive()
        if isinstance(outcome, NetError):
            raise outcome
        return outcome

    async def _outbound(
        self, host: str, port: int, ready: trio.MemorySendChannel[bytes | NetError] | None
    ) -> None:
        address = (host, port)
        reason = self.table.admission(host, inbound=False, now=time.time())
        if reason is not None:
            self._dialing.discard(address)
            self.metrics.reject(reason)
            self.table.dial_failed(f"{host}:{port}", time.time())
            if ready is not None:
                ready.send_nowait(NetError(reason, f"not dialing {host}:{port}"))
            return
        self._dialing.add(address)
        try:
            stream = await dial_from(
                self.listen_port if self.config.reuse_port else None,
                host,
                port,
                timeout_s=self.config.handshake_timeout_s,
            )
            session = await self._handshake(stream, initiator=True)
        except (OSError, trio.TooSlowError, NetError) as err:
            self.table.dial_failed(f"{host}:{port}", time.time())
            if self.on_dial_result is not None:
                self.on_dial_result(host, port, False)
            if ready is not None:
                code = err.code if isinstance(err, NetError) else "dial-failed"
                ready.send_nowait(NetError(code, f"{host}:{port}: {err}"))
            return
        finally:
            self._dialing.discard(address)
        self.table.dial_succeeded(f"{host}:{port}")
        if self.on_dial_result is not None:
            self.on_dial_result(host, port, True)
        self.addresses[address] = session.peer_id
        self.metrics.connections_out += 1
        await self._run_session(session, inbound=False, address=address, ready=ready)

    async def adopt(
        self,
        stream: trio.abc.Stream,
        *,
        initiator: bool,
        ip: str,
        relayed_via: bytes | None = None,
    ) -> bytes:
        """Runs the handshake over an already open stream (a relay circuit,
        a hole-punched socket) and keeps the session like any other; returns
        the peer id once it is up.

        Raises:
            NetError: the handshake or admission failed.
        """
        assert self._nursery is not None, "adopt() needs a running host"
        ready, result = trio.open_memory_channel[bytes | NetError](1)

        async def run() -> None:
            try:
                session = await self._handshake(stream, initiator=initiator)
            except NetError as err:
                ready.send_nowait(err)
                return
            await self._run_session(
                session,
                inbound=not initiator,
                address=None,
                ready=ready,
                ip=ip,
                relayed_via=relayed_via,
            )

        self._nursery.start_soon(run)
        outcome = await result.receive()
        if isinstance(outcome, NetError):
            raise outcome
        return outcome

    async def _on_relay(self, pid: bytes, body: bytes) -> None:
        if self.relay_frames is None:
            raise PeerMisbehaved("frame-unexpected", "this node runs no relay")
        await self.relay_frames(pid, body)

    async def _handshake(self, stream: trio.abc.Stream, *, initiator: bool) -> SecureSession:
        return await handshake(
            stream,
            self.keys,
            self.genesis_id,
            initiator=initiator,
            timeout_s=self.config.handshake_timeout_s,
            listen_addrs=self.advertise,
        )

    async def _inbound(self, stream: trio.SocketStream) -> None:
        try:
            ip = stream.socket.getpeername()[0]
        except OSError:
            await stream.aclose()
            return
        if self.table.is_banned(ip, time.time()):
            self.metrics.reject("conn-banned")
            await stream.aclose()
            return
        try:
            session = await self._handshake(stream, initiator=False)
        except NetError as err:
            self.metrics.reject(err.code)
            return
        self.metrics.connections_in += 1
        await self._run_session(session, inbound=True, address=None, ready=None, ip=ip)

    async def _run_session(
        self,
        session: SecureSession,
        *,
        inbound: bool,
        address: tuple[str, int] | None,
        ready: trio.MemorySendChannel[bytes | NetError] | None,
        ip: str | None = None,
        relayed_via: bytes | None = None,
    ) -> None:
        """Admits and serves a session; however that ends — refused,
        closed, cancelled, a failing hook — its socket is closed."""
        try:
            await self._serve_session(session, inbound, address, ready, ip, relayed_via)
        finally:
            if not session.closed:
                with trio.CancelScope(shield=True):
                    await session.aclose()

    async def _serve_session(
        self,
        session: SecureSession,
        inbound: bool,
        address: tuple[str, int] | None,
        ready: trio.MemorySendChannel[bytes | NetError] | None,
        ip: str | None,
        relayed_via: bytes | None,
    ) -> None:
        pid = session.peer_id
        if ip is None:
            try:
                ip = session.stream.socket.getpeername()[0]  # type: ignore[attr-defined]
            except OSError:  # reset since the handshake: nothing to serve
                self.metrics.reject("conn-closed")
                if ready is not None:
                    ready.send_nowait(NetError("conn-closed", "the peer left after the handshake"))
                return
        now = time.time()
        reason = self._admit(pid, ip, inbound, now, relayed=relayed_via is not None)
        if reason is not None:
            self.metrics.reject(reason)
            if address is not None and reason == "conn-self":
                self.table.dial_failed(f"{address[0]}:{address[1]}", time.time())
            await session.goodbye(reason)
            if ready is not None:
                if reason == "conn-duplicate":
                    ready.send_nowait(pid)  # connected already, over the other connection
                else:
                    ready.send_nowait(NetError(reason, "the connection was refused"))
            return
        info = PeerInfo(peer_id=pid, ip=ip, inbound=inbound, connected_at=now)
        peer = Peer(
            session,
            on_gossip=lambda body: self._on_gossip(pid, body),
            on_relay=lambda body: self._on_relay(pid, body),
        )
        peer.handler = self._request_handler(pid)
        with trio.CancelScope() as scope:
            conn = Connection(peer, info, scope, address, relayed_via)
            self.conns[pid] = conn
            self.table.peers[pid] = info
            self.router.add_peer(pid, ip, not inbound, trio.current_time())
            if relayed_via is None:  # a relayed peer's addresses are not for us to dial
                for host_port in session.remote.listen_addrs:
                    self._learn(host_port, ip, pid)
                for hook in self.on_connect:
                    hook(pid, ip, session.remote.listen_addrs, not inbound)
            self._flush()
            self._changed()
            if ready is not None:
                ready.send_nowait(pid)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._sender, conn)
                    await peer.run()
                    nursery.cancel_scope.cancel()
            except Exception:  # a bug in one session must not take the node down
                log.exception("session with %s failed", pid.hex()[:12])
            finally:
                self._drop(pid, peer)

    def _admit(
        self, pid: bytes, ip: str, inbound: bool, now: float, *, relayed: bool = False
    ) -> str | None:
        if pid == self.peer_id:
            return "conn-self"
        existing = self.conns.get(pid)
        if existing is not None:
            replaced = duplicate_replaces(
                me_smaller=self.peer_id < pid,
                inbound=inbound,
                relayed=relayed,
                existing_inbound=existing.info.inbound,
                existing_relayed=existing.relayed_via is not None,
                dialback=pid in self._dialbacks,
            )
            if replaced is None:
                return "conn-duplicate"
            self._close(pid, replaced)
        if relayed:  # the relay's address says nothing about the peer's
            reason = self.table.admission_count(inbound)
        else:
            reason = self.table.admission(ip, inbound, now)
        if reason is None and inbound:
            inbound_count = sum(p.inbound for p in self.table.peers.values())
            if inbound_count >= self.table.max_inbound:
                victim = self.table.eviction_candidate()
                if victim is None:
                    return "conn-limit-inbound"
                self._evict(victim)
        return reason

    def _evict(self, victim: bytes) -> None:
        if victim in self.conns:
            self.metrics.evicted += 1
            self._close(victim, "conn-evicted")

    def _close(self, pid: bytes, reason: str) -> None:
        """Forgets the connection at once and closes it in the background."""
        conn = self.conns.pop(pid, None)
        self.table.peers.pop(pid, None)
        if conn is None:
            return
        self.router.remove_peer(pid, trio.current_time())
        assert self._nursery is not None
        self._nursery.start_soon(conn.peer.session.goodbye, reason)
        conn.scope.cancel()

    def _drop(self, pid: bytes, peer: Peer) -> None:
        conn = self.conns.get(pid)
        if conn is not None and conn.peer is peer:
            del self.conns[pid]
            self.table.peers.pop(pid, None)
            self.router.remove_peer(pid, trio.current_time())
            self._changed()
        reason = peer.closed_reason
        if isinstance(reason, PeerMisbehaved) and conn is not None:
            self.ban(conn.info.ip, self.config.misbehaviour_ban_s)

    def _changed(self) -> None:
        self.peer_changed.set()
        self.peer_changed = trio.Event()

    def _learn(self, host_port: str, seen_ip: str, pid: bytes) -> None:
        """Remembers a listen address a peer announced, with its peer id (so
        the dial loop does not dial back a peer it is connected to)."""
        host, _, port = host_port.rpartition(":")
        if not port.isdigit() or not host:
            return
        if host in ("0.0.0.0", "::"):
            host = seen_ip
        self.addresses[(host, int(port))] = pid

    def _request_handler(self, pid: bytes) -> Handler:
        async def handler(method: str, body: bytes) -> bytes:
            fn = self.handlers.get(method)
            if fn is None:
                raise RequestFailed("unknown-method", method)
            return await fn(pid, body)

        return handler

    # ------------------------------------------------------------ gossip

    async def _on_gossip(self, pid: bytes, body: bytes) -> None:
        rpc = decode_rpc(body)
        for received in self.router.handle_rpc(pid, rpc, trio.current_time()):
            try:
                self._validate_send.send_nowait(received)
            except trio.WouldBlock:
                self.metrics.dropped_validation += 1
                self.router.validated(received, Validation.IGNORE, trio.current_time())
        self._flush()

    async def _validation_worker(self) -> None:
        async for received in self._validate_receive:
            msg = received.message
            validator = self.validators.get(msg.topic)
            if validator is None:
                verdict = Validation.ACCEPT
            else:
                try:
                    verdict = await validator(msg.topic, msg.data, received.source)
                except Exception:
                    log.exception("validator for %s failed", msg.topic)
                    verdict = Validation.IGNORE
            if self.router.validated(received, verdict, trio.current_time()):
                conn = self.conns.get(received.source)
                if conn is not None:
                    conn.info.last_useful_at = time.time()
                send = self._topic_send.get(msg.topic)
                if send is not None:
                    try:
                        send.send_nowait(
                            Delivered(msg.topic, msg.data, received.message_id, received.source)
                        )
                    except trio.WouldBlock:
                        self.metrics.dropped_delivery += 1
            self._flush()

    def _flush(self) -> None:
        """Wakes the sender of every peer the router has queued RPCs for."""
        for pid in self.router.has_outgoing():
            conn = self.conns.get(pid)
            if conn is not None:
                conn.wake.set()

    async def _sender(self, conn: Connection) -> None:
        pid = conn.info.peer_id
        with contextlib.suppress(ConnectionClosed):
            while True:
                await conn.wake.wait()
                conn.wake = trio.Event()
                for rpc in self.router.take_for(pid):
                    for raw in _encode_rpcs(rpc):
                        await conn.peer.session.send_frame(FrameKind.GOSSIP, raw)

    # ------------------------------------------------------------ loops

    async def _heartbeat_loop(self) -> None:
        graylist = self.config.score.graylist_threshold
        while True:
            await trio.sleep(self.config.gossip.heartbeat_s)
            now = trio.current_time()
            self.router.heartbeat(now)
            for pid, conn in list(self.conns.items()):
                if self.router.peer_score(pid, now) < graylist:
                    self.metrics.disconnected_for_score += 1
                    assert self._nursery is not None
                    self._nursery.start_soon(
                        functools.partial(
                            self.disconnect, pid, "gossip-graylisted", ban_s=self.config.ban_s
                        )
                    )
                    conn.info.last_useful_at = -math.inf
            self._flush()

    async def _keepalive_loop(self) -> None:
        while True:
            await trio.sleep(self.config.keepalive_s)
            async with trio.open_nursery() as nursery:
                for pid in list(self.conns):
                    nursery.start_soon(self._ping, pid)

    async def _ping(self, pid: bytes) -> None:
        conn = self.conns.get(pid)
        if conn is None:
            return
        try:
            conn.info.ping_s = await conn.peer.ping(timeout_s=self.config.ping_timeout_s)
        except RequestFailed as err:
            # no pong, or the session ended under the ping (it is being torn
            # down: disconnect is then a no-op); never the host's failure
            reason = "ping-timeout" if err.code == "request-timeout" else "ping-closed"
            await self.disconnect(pid, reason)

    async def _dial_loop(self) -> None:
        while True:
            outbound = sum(not c.info.inbound for c in self.conns.values())
            want = self.config.target_outbound - outbound - len(self._dialing)
            now = time.time()
            if want > 0:
                connected = set(self.conns)
                for address, pid in list(self.addresses.items()):
                    if want <= 0:
                        break
                    key = f"{address[0]}:{address[1]}"
                    if (
                        address in self._dialing
                        or (pid is not None and pid in connected)
                        or self.table.next_dial_at(key, now) > now
                    ):
                        continue
                    want -= 1
                    self._start_dial(address)
                if want > 0 and self.dial_candidates is not None:
                    for address in self.dial_candidates(want):
                        if address not in self._dialing and address not in self.addresses:
                            self._start_dial(address)
            await trio.sleep(self.config.dial_interval_s)

    def _start_dial(self, address: tuple[str, int]) -> None:
        self._dialing.add(address)
        assert self._nursery is not None
        self._nursery.start_soon(self._outbound, address[0], address[1], None)
