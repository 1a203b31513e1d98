"""The pure core of a Kademlia DHT (Maymounkov & Mazières, 2002): routing
table, provider records and the iterative lookup. Contacts and the wire
records are in `bcai.net._kademlia_wire` (re-exported here).

Node ids are 32-byte peer ids (BLAKE3 of an identity key), so ids are
uniform and the distance is XOR over 256 bits. Nothing here does I/O, reads
a clock or draws randomness: every time-dependent call takes `now`
(seconds), and the network layer sends the queries and reports the answers.

Choices:

* ``K = 20`` contacts per bucket and per answer, the paper's value and
  libp2p's: the chance that all k contacts of a bucket leave within an hour
  is negligible, and one answer fits in a small frame (20 × ~90 bytes).
* ``ALPHA = 3`` queries in flight per lookup, the paper's value: enough to
  hide one slow or dead peer without flooding the network.
* Buckets split only when full and covering the local id (the paper's
  basic rule), so the table holds O(k · log n) contacts and knows its own
  neighbourhood completely. A full bucket elsewhere keeps its old contacts
  (long-lived peers tend to stay up, and an attacker cannot flush them with
  fresh ids): the newcomer waits in a replacement cache of
  ``REPLACEMENTS = 8`` and the caller pings the least-recently-seen
  contact; only a failed ping evicts it.
* Provider records live ``PROVIDER_TTL_S = 24 h``; providers re-announce every
  ``REPUBLISH_INTERVAL_S = 12 h`` so one missed round does not lose them.
  A store keeps at most 20 providers per key (the freshest: a provider
  that re-announces stays) and refuses new keys beyond 65,536, so memory is
  bounded whatever peers send.
"""

from __future__ import annotations

import bisect
import enum
import heapq
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from bcai.net._kademlia_wire import (
    CONTACTS,
    ID_BYTES,
    MAX_ADDR_LEN,
    MAX_ADDRS,
    MAX_CONTACTS,
    PEER_ID,
    AddProvider,
    Contact,
    ContactRecord,
    DhtError,
    FindNode,
    GetProviders,
    Nodes,
    Providers,
    _check_id,
    contact_from_record,
    contact_to_record,
    contacts_from_records,
    decode_message,
    format_address,
    parse_address,
)

__all__ = [
    "ALPHA",
    "CONTACTS",
    "ID_BITS",
    "ID_BYTES",
    "MAX_ADDRS",
    "MAX_ADDR_LEN",
    "MAX_CONTACTS",
    "MAX_LOOKUP_PROVIDERS",
    "MAX_PROVIDERS_PER_KEY",
    "MAX_PROVIDER_KEYS",
    "PEER_ID",
    "PING_TIMEOUT_S",
    "PROVIDER_TTL_S",
    "REPLACEMENTS",
    "REPUBLISH_INTERVAL_S",
    "AddProvider",
    "Bucket",
    "Contact",
    "ContactRecord",
    "DhtError",
    "FindNode",
    "GetProviders",
    "K",
    "Lookup",
    "Nodes",
    "ProviderStore",
    "Providers",
    "RoutingTable",
    "contact_from_record",
    "contact_to_record",
    "contacts_from_records",
    "decode_message",
    "format_address",
    "parse_address",
    "xor_distance",
]

ID_BITS = 8 * ID_BYTES
K = 20
ALPHA = 3
REPLACEMENTS = 8
PING_TIMEOUT_S = 10.0
PROVIDER_TTL_S = 24 * 3600.0
REPUBLISH_INTERVAL_S = 12 * 3600.0
MAX_PROVIDERS_PER_KEY = 20
MAX_PROVIDER_KEYS = 65536
MAX_LOOKUP_PROVIDERS = 256


def xor_distance(a: bytes, b: bytes) -> int:
    """The Kademlia distance between two ids, as an integer."""
    return int.from_bytes(a, "big") ^ int.from_bytes(b, "big")


# --- routing table ---------------------------------------------------------


@dataclass(eq=False, slots=True)
class Bucket:
    """The contacts whose ids start with `prefix` (`depth` bits long).

    `contacts` and `replacements` are ordered least-recently-seen first.
    """

    depth: int
    prefix: int
    contacts: OrderedDict[bytes, Contact] = field(default_factory=OrderedDict)
    replacements: OrderedDict[bytes, Contact] = field(default_factory=OrderedDict)
    updated_at: float = 0.0

    @property
    def lo(self) -> int:
        """The smallest id (as an integer) in the bucket's range."""
        return self.prefix << (ID_BITS - self.depth)

    @property
    def hi(self) -> int:
        """One past the largest id in the bucket's range."""
        return (self.prefix + 1) << (ID_BITS - self.depth)

    def covers(self, peer_id: bytes) -> bool:
        return self.lo <= int.from_bytes(peer_id, "big") < self.hi


class RoutingTable:
    """The k-buckets of one node, as the paper's bucket tree.

    Bucket ``i`` (for ``i`` below the last) holds the ids that share exactly
    ``i`` leading bits with the local id; the last bucket holds everything
    closer and is the only one that ever splits.

    Call `update` for every contact heard from directly (a request or answer
    on an authenticated session), never for contacts named by third parties:
    those are dialled by a lookup first.
    """

    def __init__(
        self,
        local_id: bytes,
        *,
        k: int = K,
        replacements: int = REPLACEMENTS,
        ping_timeout_s: float = PING_TIMEOUT_S,
    ) -> None:
        self.local_id = _check_id(local_id, "local id")
        if k < 1 or replacements < 0:
            raise ValueError("k must be >= 1 and replacements >= 0")
        self.k = k
        self.max_replacements = replacements
        self.ping_timeout_s = ping_timeout_s
        self._local = int.from_bytes(local_id, "big")
        self._buckets = [Bucket(depth=0, prefix=0)]
        self._pinging: dict[bytes, float] = {}

    def __len__(self) -> int:
        return sum(len(b.contacts) for b in self._buckets)

    def buckets(self) -> tuple[Bucket, ...]:
        """The buckets, farthest from the local id first (for inspection)."""
        return tuple(self._buckets)

    def get(self, peer_id: bytes) -> Contact | None:
        """The contact with this id, if it is in a bucket (not a replacement)."""
        return self._bucket_for(peer_id).contacts.get(peer_id)

    def _bucket_for(self, peer_id: bytes) -> Bucket:
        shared = ID_BITS - (int.from_bytes(peer_id, "big") ^ self._local).bit_length()
        return self._buckets[min(shared, len(self._buckets) - 1)]

    def update(self, contact: Contact, now: float) -> Contact | None:
        """Records that `contact` was just heard from.

        A known contact moves to the tail (and takes the new address); a new
        one joins its bucket if there is room, splitting the local bucket
        when needed. Otherwise it waits in the replacement cache.

        Returns:
            The least-recently-seen contact of a full bucket, which the
            caller must ping and report with `ping_result`; None when nothing
            needs checking (including while an earlier ping of that contact,
            younger than ``ping_timeout_s``, is still out).
        """
        pid = contact.peer_id
        if pid == self.local_id:
            return None
        bucket = self._bucket_for(pid)
        if pid in bucket.contacts:
            bucket.contacts[pid] = contact
            bucket.contacts.move_to_end(pid)
            bucket.updated_at = now
            return None
        while len(bucket.contacts) >= self.k and self._can_split(bucket):
            self._split()
            bucket = self._bucket_for(pid)
        if len(bucket.contacts) < self.k:
            bucket.replacements.pop(pid, None)
            bucket.contacts[pid] = contact
            bucket.updated_at = now
            return None
        self._add_replacement(bucket, contact)
        return self._ping_candidate(bucket, now)

    def ping_result(self, stale_peer_id: bytes, alive: bool, now: float) -> None:
        """Applies the outcome of pinging a contact `update` returned.

        Alive: it moves to the tail and the newcomer stays a replacement.
        Dead: it is evicted and the freshest replacement takes its place.
        """
        self._pinging.pop(stale_peer_id, None)
        bucket = self._bucket_for(stale_peer_id)
        if stale_peer_id not in bucket.contacts:
            return
        if alive:
            bucket.contacts.move_to_end(stale_peer_id)
            bucket.updated_at = now
        else:
            self.remove(stale_peer_id)

    def remove(self, peer_id: bytes) -> bool:
        """Forgets a contact (and any replacement entry); the freshest
        replacement fills the freed slot. Returns whether it was in a bucket."""
        self._pinging.pop(peer_id, None)
        bucket = self._bucket_for(peer_id)
        bucket.replacements.pop(peer_id, None)
        if bucket.contacts.pop(peer_id, None) is None:
            return False
        self._promote_replacements(bucket)
        return True

    def closest(self, target: bytes, count: int | None = None) -> list[Contact]:
        """The `count` (default k) known contacts nearest to `target`,
        nearest first; exact over all buckets."""
        t = int.from_bytes(target, "big")
        everyone = (c for b in self._buckets for c in b.contacts.values())
        return heapq.nsmallest(
            self.k if count is None else count,
            everyone,
            key=lambda c: int.from_bytes(c.peer_id, "big") ^ t,
        )

    def _can_split(self, bucket: Bucket) -> bool:
        return bucket is self._buckets[-1] and bucket.depth < ID_BITS

    def _split(self) -> None:
        own = self._buckets[-1]
        depth = own.depth + 1
        near_prefix = self._local >> (ID_BITS - depth)
        near = Bucket(depth, near_prefix, updated_at=own.updated_at)
        far = Bucket(depth, near_prefix ^ 1, updated_at=own.updated_at)
        # The local bucket never has replacements: a full one splits instead.
        for pid, contact in own.contacts.items():
            (near if near.covers(pid) else far).contacts[pid] = contact
        self._buckets[-1:] = [far, near]

    def _add_replacement(self, bucket: Bucket, contact: Contact) -> None:
        if self.max_replacements == 0:
            return
        bucket.replacements[contact.peer_id] = contact
        bucket.replacements.move_to_end(contact.peer_id)
        while len(bucket.replacements) > self.max_replacements:
            bucket.replacements.popitem(last=False)

    def _promote_replacements(self, bucket: Bucket) -> None:
        while len(bucket.contacts) < self.k and bucket.replacements:
            pid, contact = bucket.replacements.popitem(last=True)
            bucket.contacts[pid] = contact

    def _ping_candidate(self, bucket: Bucket, now: float) -> Contact | None:
        oldest = next(iter(bucket.contacts.values()))
        since = self._pinging.get(oldest.peer_id)
        if since is not None and now - since < self.ping_timeout_s:
            return None
        self._pinging[oldest.peer_id] = now
        return oldest


# --- provider records ------------------------------------------------------


class ProviderStore:
    """Who announced that they provide which 32-byte key, until a TTL.

    Entries expire ``ttl_s`` after their last announcement. Expiry order is
    kept in one queue (oldest announcement first), so `expire` costs only
    the entries it removes and runs on every `add`.
    """

    def __init__(
        self,
        *,
        ttl_s: float = PROVIDER_TTL_S,
        max_providers_per_key: int = MAX_PROVIDERS_PER_KEY,
        max_keys: int = MAX_PROVIDER_KEYS,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_providers_per_key = max_providers_per_key
        self.max_keys = max_keys
        self._expiry: OrderedDict[tuple[bytes, bytes], float] = OrderedDict()
        self._by_key: dict[bytes, OrderedDict[bytes, Contact]] = {}

    def __len__(self) -> int:
        """The number of (key, provider) records held."""
        return len(self._expiry)

    def key_count(self) -> int:
        return len(self._by_key)

    def add(self, key: bytes, provider: Contact, now: float) -> bool:
        """Stores or refreshes a provider record.

        When the key already has ``max_providers_per_key`` providers the
        least recently announced one is dropped.

        Returns:
            False when the key is new and ``max_keys`` keys are held.

        Raises:
            DhtError: ``dht-bad-key`` for a key that is not 32 bytes.
        """
        _check_id(key, "provider key", "dht-bad-key")
        self.expire(now)
        providers = self._by_key.get(key)
        if providers is None:
            if len(self._by_key) >= self.max_keys:
                return False
            providers = self._by_key[key] = OrderedDict()
        pid = provider.peer_id
        providers[pid] = provider
        providers.move_to_end(pid)
        self._expiry[(key, pid)] = now + self.ttl_s
        self._expiry.move_to_end((key, pid))
        while len(providers) > self.max_providers_per_key:
            dropped, _ = providers.popitem(last=False)
            del self._expiry[(key, dropped)]
        return True

    def get(self, key: bytes, now: float) -> list[Contact]:
        """The unexpired providers of `key`, most recently announced first."""
        providers = self._by_key.get(key)
        if providers is None:
            return []
        return [c for pid, c in reversed(providers.items()) if self._expiry[(key, pid)] > now]

    def expire(self, now: float) -> int:
        """Drops the records whose TTL has passed; returns how many.

        If `now` ever went backwards between announcements, a few expired
        records may linger until a later call; `get` never returns them.
        """
        removed = 0
        while self._expiry:
            (key, pid), expires_at = next(iter(self._expiry.items()))
            if expires_at > now:
                break
            self._expiry.popitem(last=False)
            providers = self._by_key[key]
            del providers[pid]
            if not providers:
                del self._by_key[key]
            removed += 1
        return removed


# --- iterative lookup ------------------------------------------------------


class _State(enum.Enum):
    NEW = enum.auto()
    IN_FLIGHT = enum.auto()
    ANSWERED = enum.auto()
    FAILED = enum.auto()


@dataclass(slots=True)
class _Candidate:
    contact: Contact
    hop: int
    state: _State = _State.NEW


class Lookup:
    """One iterative FIND_NODE or GET_PROVIDERS lookup, as a state machine.

    The caller loops: send `next_queries()`, report each outcome with
    `on_response` or `on_failure`, until `done`; queries still in flight
    then may be abandoned. Each contact is queried at most once.

    Args:
        target: the 32-byte id or key looked up.
        seeds: where to start (usually the local table's `closest(target)`).
        k: how many answering contacts the result holds.
        alpha: how many queries may be in flight at once.
        local_id: our own id, never queried even if peers name it.
        max_providers: for GET_PROVIDERS, stop once this many providers are
            known; None collects them (up to 256) until the walk ends.
    """

    def __init__(
        self,
        target: bytes,
        seeds: Iterable[Contact],
        *,
        k: int = K,
        alpha: int = ALPHA,
        local_id: bytes | None = None,
        max_providers: int | None = None,
    ) -> None:
        if k < 1 or alpha < 1:
            raise ValueError("k and alpha must be >= 1")
        self.target = _check_id(target, "lookup target", "dht-bad-key")
        self.k = k
        self.alpha = alpha
        self.local_id = local_id
        self.max_providers = max_providers
        self._target = int.from_bytes(target, "big")
        self._peers: dict[bytes, _Candidate] = {}
        self._order: list[tuple[int, bytes]] = []  # (distance, peer id), nearest first
        self._in_flight = 0
        self._providers: dict[bytes, Contact] = {}
        for seed in seeds:
            self._learn(seed, hop=1)

    @property
    def providers(self) -> list[Contact]:
        """The providers reported so far, in the order they were learned."""
        return list(self._providers.values())

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def hops(self) -> int:
        """The deepest hop among queried contacts (seeds are hop 1; contacts
        named in a hop-h answer are hop h + 1)."""
        return max((c.hop for c in self._peers.values() if c.state is not _State.NEW), default=0)

    @property
    def done(self) -> bool:
        """True when the k nearest contacts not known to have failed have all
        answered (or no candidates are left), or enough providers are known."""
        if self.max_providers is not None and len(self._providers) >= self.max_providers:
            return True
        return all(c.state is _State.ANSWERED for c in self._window())

    def next_queries(self) -> list[Contact]:
        """Marks and returns the next contacts to query: the nearest
        not-yet-queried among the k nearest, up to alpha in flight."""
        if self.done:
            return []
        picked: list[Contact] = []
        for cand in self._window():
            if self._in_flight + len(picked) >= self.alpha:
                break
            if cand.state is _State.NEW:
                cand.state = _State.IN_FLIGHT
                picked.append(cand.contact)
        self._in_flight += len(picked)
        return picked

    def on_response(
        self,
        contact: Contact,
        closer: Sequence[Contact],
        providers: Sequence[Contact] = (),
    ) -> None:
        """Records an answer from a queried contact: the contacts it named
        (at most k are read) and any providers. Answers from contacts not in
        flight are ignored."""
        cand = self._take_in_flight(contact)
        if cand is None:
            return
        cand.state = _State.ANSWERED
        for other in closer[: self.k]:
            self._learn(other, cand.hop + 1)
        cap = MAX_LOOKUP_PROVIDERS if self.max_providers is None else self.max_providers
        for provider in providers[:MAX_CONTACTS]:
            if len(self._providers) >= cap:
                break
            self._providers.setdefault(provider.peer_id, provider)

    def on_failure(self, contact: Contact) -> None:
        """Records that a queried contact did not answer (timeout, refusal,
        malformed reply); it is never asked again nor returned."""
        cand = self._take_in_flight(contact)
        if cand is not None:
            cand.state = _State.FAILED

    def result(self) -> list[Contact]:
        """The k nearest contacts that answered, nearest first."""
        answered = (self._peers[pid] for _, pid in self._order)
        return [c.contact for c in answered if c.state is _State.ANSWERED][: self.k]

    def _take_in_flight(self, contact: Contact) -> _Candidate | None:
        cand = self._peers.get(contact.peer_id)
        if cand is None or cand.state is not _State.IN_FLIGHT:
            return None
        self._in_flight -= 1
        return cand

    def _learn(self, contact: Contact, hop: int) -> None:
        pid = contact.peer_id
        if pid == self.local_id or pid in self._peers:
            return
        self._peers[pid] = _Candidate(contact, hop)
        bisect.insort(self._order, (int.from_bytes(pid, "big") ^ self._target, pid))

    def _window(self) -> Iterator[_Candidate]:
        """The k nearest known contacts that have not failed."""
        taken = 0
        for _, pid in self._order:
            if taken == self.k:
                return
            cand = self._peers[pid]
            if cand.state is not _State.FAILED:
                taken += 1
                yield cand
