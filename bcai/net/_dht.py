"""The Kademlia DHT on the host: requests, lookups, provider records.

Requests (bodies are the records of `bcai.net._kademlia`):
- ``dht/find_node`` `FindNode(target)` → `Nodes(≤ 20 closest contacts)`;
- ``dht/add_provider`` `AddProvider(key, provider)`: stored if
  `provider.peer_id` is the sender's own authenticated id
  (``dht-provider-mismatch`` otherwise), with the store's TTL and limits;
- ``dht/get_providers`` `GetProviders(key)` → `Providers(providers, closer)`.
Malformed bodies are answered ``dht-malformed`` / ``dht-bad-address``.

Only DHT *servers* answer these (publicly reachable nodes); a client (a node
behind NAT) asks but does not answer (``unknown-method``), so it never
enters anyone's routing table. A node learns that a peer is a server by
asking it once, when a direct connection opens; the answer also seeds the
table. A routing-table update that finds a full bucket pings its
least-recently-seen contact and evicts it only if it does not answer.

A provider behind NAT announces its relay's address with its own peer id:
whoever dials that address reaches the relay (another peer id) and asks it
for a circuit to the provider (`Dht.reach`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import trio

from bcai.crypto import blake3
from bcai.net._errors import NetError
from bcai.net._host import Host
from bcai.net._kademlia import (
    AddProvider,
    Contact,
    ContactRecord,
    DhtError,
    FindNode,
    GetProviders,
    Lookup,
    Nodes,
    Providers,
    ProviderStore,
    RoutingTable,
    contact_from_record,
    contact_to_record,
    contacts_from_records,
    decode_message,
    parse_address,
)
from bcai.net._peer import RequestFailed

QUERY_TIMEOUT_S = 5.0
M = TypeVar("M", FindNode, AddProvider, GetProviders)


def content_key(data_or_name: bytes) -> bytes:
    """The DHT key of a blob (its content id) or of a rendezvous name."""
    return blake3(b"bcai/dht/key:" + data_or_name)


@dataclass
class LookupStats:
    lookups: int = 0
    hops: int = 0
    queries: int = 0
    failures: int = 0


class Dht:
    def __init__(
        self,
        host: Host,
        *,
        server: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.server = server
        self.clock = clock
        self.table = RoutingTable(host.peer_id)
        self.providers = ProviderStore()
        self.stats = LookupStats()
        self.own_contact: Contact | None = None  # how others reach us (set by the node)
        if server:
            self.serve()
        host.on_connect.append(self._connected)

    def serve(self) -> None:
        """Answers DHT requests (the node is publicly reachable)."""
        self.server = True
        self.host.handle("dht/find_node", self._find_node)
        self.host.handle("dht/add_provider", self._add_provider)
        self.host.handle("dht/get_providers", self._get_providers)

    # ------------------------------------------------------------ serving

    async def _find_node(self, peer: bytes, body: bytes) -> bytes:
        target = self._decode(FindNode, body).target
        return Nodes(contacts=self._closest(target, exclude=peer)).encode()

    def _closest(self, target: bytes, exclude: bytes) -> tuple[ContactRecord, ...]:
        return tuple(
            contact_to_record(c) for c in self.table.closest(target) if c.peer_id != exclude
        )

    async def _add_provider(self, peer: bytes, body: bytes) -> bytes:
        msg = self._decode(AddProvider, body)
        if msg.provider.peer_id != peer:
            raise RequestFailed("dht-provider-mismatch", "one may only announce oneself")
        try:
            provider = contact_from_record(msg.provider)
        except DhtError as err:
            raise RequestFailed(err.code, err.message) from err
        if not self.providers.add(msg.key, provider, self.clock()):
            raise RequestFailed("dht-full", "no room for another key")
        return b""

    async def _get_providers(self, peer: bytes, body: bytes) -> bytes:
        key = self._decode(GetProviders, body).key
        found = tuple(contact_to_record(c) for c in self.providers.get(key, self.clock()))
        return Providers(providers=found, closer=self._closest(key, exclude=peer)).encode()

    @staticmethod
    def _decode(record: type[M], body: bytes) -> M:
        try:
            return decode_message(record, body)
        except DhtError as err:
            raise RequestFailed(err.code, err.message) from err

    # ------------------------------------------------------------ table

    def _connected(
        self, pid: bytes, ip: str, listen_addrs: tuple[str, ...], outbound: bool
    ) -> None:
        contact = self._contact(pid, ip, listen_addrs)
        if contact is not None and self.host._nursery is not None:
            self.host._nursery.start_soon(self._check_server, contact)

    @staticmethod
    def _contact(pid: bytes, ip: str, listen_addrs: tuple[str, ...]) -> Contact | None:
        for text in listen_addrs:
            with contextlib.suppress(DhtError, ValueError):
                host, port = parse_address(text)
                if host in ("0.0.0.0", "::"):
                    host = ip
                return Contact(pid, host, port)
        return None

    async def _check_server(self, contact: Contact) -> None:
        """Asks a new peer for our own neighbourhood: an answer proves it is
        a server (into the table) and seeds the table with its contacts."""
        try:
            raw = await self.host.request(
                contact.peer_id,
                "dht/find_node",
                FindNode(target=self.host.peer_id).encode(),
                timeout_s=QUERY_TIMEOUT_S,
            )
            nodes = contacts_from_records(decode_message(Nodes, raw).contacts)
        except (RequestFailed, DhtError):
            return
        await self.add(contact)
        for c in nodes:
            await self.add(c)

    async def add(self, contact: Contact) -> None:
        """Puts a server contact in the table, pinging the stale one of a
        full bucket first."""
        if contact.peer_id == self.host.peer_id:
            return
        stale = self.table.update(contact, self.clock())
        if stale is not None:
            alive = await self._ping(stale)
            self.table.ping_result(stale.peer_id, alive, self.clock())

    async def _ping(self, contact: Contact) -> bool:
        try:
            await self._query(contact, "dht/find_node", FindNode(target=contact.peer_id).encode())
        except (RequestFailed, NetError, DhtError):
            return False
        return True

    # ------------------------------------------------------------ queries

    async def _query(self, contact: Contact, method: str, body: bytes) -> bytes:
        """Sends a request to `contact`, dialing it first if need be."""
        if contact.peer_id not in self.host.conns:
            with trio.fail_after(QUERY_TIMEOUT_S):
                pid = await self.host.dial(contact.host, contact.port)
            if pid != contact.peer_id:
                raise DhtError("dht-wrong-peer", "another node answered at that address")
        self.stats.queries += 1
        return await self.host.request(contact.peer_id, method, body, timeout_s=QUERY_TIMEOUT_S)

    async def _walk(
        self,
        lookup: Lookup,
        method: str,
        body: bytes,
        parse: Callable[[bytes], tuple[list[Contact], list[Contact]]],
    ) -> Lookup:
        self.stats.lookups += 1
        wake = trio.Event()

        async def one(contact: Contact) -> None:
            nonlocal wake
            try:
                closer, found = parse(await self._query(contact, method, body))
            except (RequestFailed, NetError, DhtError, trio.TooSlowError):
                self.stats.failures += 1
                lookup.on_failure(contact)
            else:
                lookup.on_response(contact, closer, found)
                for c in closer:
                    await self.add(c)
            wake.set()

        async with trio.open_nursery() as nursery:
            while not lookup.done:
                queries = lookup.next_queries()
                for contact in queries:
                    nursery.start_soon(one, contact)
                if not queries and lookup.in_flight == 0:
                    break
                await wake.wait()
                wake = trio.Event()
            nursery.cancel_scope.cancel()
        self.stats.hops = lookup.hops
        return lookup

    async def find_node(self, target: bytes) -> list[Contact]:
        """The k servers closest to `target` (iterative FIND_NODE)."""
        lookup = Lookup(target, self.table.closest(target), local_id=self.host.peer_id)

        def parse(raw: bytes) -> tuple[list[Contact], list[Contact]]:
            return contacts_from_records(decode_message(Nodes, raw).contacts), []

        await self._walk(lookup, "dht/find_node", FindNode(target=target).encode(), parse)
        return lookup.result()

    async def find_providers(self, key: bytes, *, want: int | None = None) -> list[Contact]:
        local = self.providers.get(key, self.clock())
        lookup = Lookup(
            key, self.table.closest(key), local_id=self.host.peer_id, max_providers=want
        )

        def parse(raw: bytes) -> tuple[list[Contact], list[Contact]]:
            msg = decode_message(Providers, raw)
            return contacts_from_records(msg.closer), contacts_from_records(msg.providers)

        await self._walk(lookup, "dht/get_providers", GetProviders(key=key).encode(), parse)
        seen = {c.peer_id: c for c in local}
        for c in lookup.providers:
            seen.setdefault(c.peer_id, c)
        return list(seen.values())

    async def provide(self, key: bytes) -> int:
        """Announces us as a provider of `key` to the k closest servers;
        returns how many accepted."""
        if self.own_contact is None:
            raise DhtError("dht-no-address", "no address to announce yet")
        if self.server:
            self.providers.add(key, self.own_contact, self.clock())
        closest = await self.find_node(key)
        body = AddProvider(key=key, provider=contact_to_record(self.own_contact)).encode()
        accepted = 0
        for contact in closest:
            with contextlib.suppress(RequestFailed, NetError, DhtError, trio.TooSlowError):
                await self._query(contact, "dht/add_provider", body)
                accepted += 1
        return accepted

    async def reach(
        self, contact: Contact, via_relay: Callable[[bytes, bytes], Awaitable[object]]
    ) -> bytes:
        """Connects to a provider: directly, or through the relay found at
        its address (`via_relay(relay, target)`); returns its peer id."""
        if contact.peer_id in self.host.conns:
            return contact.peer_id
        pid = await self.host.dial(contact.host, contact.port)
        if pid != contact.peer_id:
            await via_relay(pid, contact.peer_id)
        return contact.peer_id
