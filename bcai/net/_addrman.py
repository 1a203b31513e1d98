"""The address book: which peers we know of and which we pick to dial, laid
out so that one attacker cannot fill it (Bitcoin Core's addrman, src/addrman.cpp).

Addresses live in two tables of fixed-size buckets. The **new** table
(`NEW_BUCKET_COUNT` x `BUCKET_SIZE`) holds addresses we have heard of; the
**tried** table (`TRIED_BUCKET_COUNT` x `BUCKET_SIZE`) holds addresses we
have connected to. Every placement is a keyed BLAKE3 hash under a 32-byte
secret `key`, so an attacker cannot aim at a slot:

- new bucket = H(source group, H(addr group, source group) mod 64): all the
  addresses one source /16 (IPv6: /32) tells us about land in at most
  `NEW_BUCKETS_PER_SOURCE_GROUP` = 64 of the 1024 new buckets;
- tried bucket = H(addr group, H(addr) mod 8): one /16 of addresses fills at
  most `TRIED_BUCKETS_PER_GROUP` = 8 of the 256 tried buckets;
- position in a bucket = H(table, bucket, addr) mod `BUCKET_SIZE`.

An address heard of from several sources sits in up to
`NEW_BUCKETS_PER_ADDRESS` = 8 new buckets; after the first, each further
reference is taken with probability 1/2^refcount. A slot collision keeps the
current entry unless it is *terrible* (seen in the future, unseen for
`HORIZON_S`, `RETRIES` failures and no success, or `MAX_FAILURES` failures and
no success for `MIN_FAIL_S`). Only `good` (a connection that worked) moves an
address to tried; when its tried slot is taken we *test before evicting*: the
collision is remembered, the caller connects to the current occupant (a
feeler) and `resolve_collision` keeps it if it answered.

`select` picks tried or new with even odds, then a uniform non-empty bucket
(as Bitcoin Core 25+: a random bucket, a random position, the first occupied
slot from there), accepting the entry with its `chance` (0.66 per failed
attempt, x0.01 if tried in the last 10 minutes) times a factor that grows 1.2x
per rejection. Choosing buckets rather than slots is what makes the bucket
limits matter: an attacker's 10,000 addresses in 64 buckets weigh the same as
64 honest buckets.

Simplifications against Bitcoin Core: no time penalty on relayed addresses,
no service flags, no asmap; every `attempt` counts as a failure (Bitcoin
skips failures while the node itself is offline); pending collisions are not
persisted. Pure: no I/O and no clock (times are `now` seconds, passed in);
randomness only from the `random.Random` given, or one seeded from the key's hash.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field

from bcai.crypto import blake3_keyed
from bcai.net._errors import NetError
from bcai.net._policy import netgroup

NEW_BUCKET_COUNT = 1024
TRIED_BUCKET_COUNT = 256
BUCKET_SIZE = 64
NEW_BUCKETS_PER_SOURCE_GROUP = 64
TRIED_BUCKETS_PER_GROUP = 8
NEW_BUCKETS_PER_ADDRESS = 8
HORIZON_S = 30 * 86400.0  # unseen this long: terrible
RETRIES = 3  # failures without any success: terrible
MAX_FAILURES = 10  # failures in a row ...
MIN_FAIL_S = 7 * 86400.0  # ... with no success for this long: terrible
RECENT_TRY_S = 60.0  # tried this recently: never terrible
FUTURE_SLACK_S = 600.0  # last seen further ahead than this: terrible
CHANCE_RECENT_TRY_S = 600.0  # tried this recently: 1% chance in select
TRIED_COLLISIONS_MAX = 10
MAX_SAMPLE = 1000
FORMAT_VERSION = 1
KEY_SIZE = 32
MAX_BUCKETS = 1 << 16
MAX_BUCKET_SIZE = 1 << 10
MAX_STORED_ENTRIES = 1 << 20
_MAX_ATTEMPTS = 2**32 - 1


class AddrManError(NetError):
    """A stored address book that cannot be loaded. Codes: ``addrman-malformed``
    (not the encoding), ``addrman-bad-version``, ``addrman-wrong-key``,
    ``addrman-bad-shape``, ``addrman-bad-address``, ``addrman-duplicate``,
    ``addrman-bad-placement`` (a slot that is not where the key puts it),
    ``addrman-slot-taken``. Start with an empty address book on any of them."""


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """`text` as an IP, IPv4-mapped IPv6 unmapped; ValueError if not a plain literal."""
    if not isinstance(text, str):
        raise ValueError(f"an IP literal must be a str, got {type(text).__name__}")
    ip = ipaddress.ip_address(text)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id is not None:
            raise ValueError(f"{text!r}: scoped IPv6 addresses are not peer addresses")
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
    return ip


def _source_group(source_ip: str) -> str:
    return netgroup(str(_parse_ip(source_ip)))


@dataclass(frozen=True, slots=True)
class NetAddr:
    """A peer's dialable address. `host` is kept canonical (IPv4-mapped IPv6
    becomes IPv4); a host that is not an IP literal raises ValueError."""

    host: str
    port: int

    def __post_init__(self) -> None:
        if type(self.port) is not int or not 0 <= self.port <= 0xFFFF:
            raise ValueError(f"port must be an int in 0..65535, got {self.port!r}")
        object.__setattr__(self, "host", str(_parse_ip(self.host)))

    @property
    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        return ipaddress.ip_address(self.host)

    @property
    def netgroup(self) -> str:
        """The /16 (IPv4) or /32 (IPv6) this address is bucketed by."""
        return netgroup(self.host)

    def key_bytes(self) -> bytes:
        """Packed IP ‖ u16 port: what the bucket hashes read."""
        return self.ip.packed + self.port.to_bytes(2, "big")

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class AddressPosition:
    """Where an address sits: its table and each (bucket, position) it holds."""

    tried: bool
    slots: tuple[tuple[int, int], ...]


@dataclass(slots=True)
class _Entry:
    addr: NetAddr
    source_group: str  # of the first source; used when evicted from tried back to new
    last_seen: float
    last_try: float | None = None
    last_success: float | None = None
    attempts: int = 0
    tried: bool = False
    new_refs: dict[int, str] = field(default_factory=dict)  # new bucket -> source group

    def is_terrible(self, now: float) -> bool:
        """Bitcoin's IsTerrible: worth replacing and not worth sharing."""
        if self.last_try is not None and now - self.last_try < RECENT_TRY_S:
            return False
        if self.last_seen > now + FUTURE_SLACK_S:
            return True
        if now - self.last_seen > HORIZON_S:
            return True
        if self.last_success is None:
            return self.attempts >= RETRIES
        return now - self.last_success > MIN_FAIL_S and self.attempts >= MAX_FAILURES

    def chance(self, now: float) -> float:
        """Bitcoin's GetChance: relative odds of being picked by `select`."""
        odds = 1.0
        if self.last_try is not None and now - self.last_try < CHANCE_RECENT_TRY_S:
            odds *= 0.01
        return odds * 0.66 ** min(self.attempts, 8)


class _Table:
    """`buckets` rows of `size` slots; rows exist only while occupied, and the
    occupied rows are kept in a list so a uniform one is O(1) to pick."""

    def __init__(self, buckets: int, size: int) -> None:
        self.buckets = buckets
        self.size = size
        self.count = 0
        self._rows: dict[int, list[NetAddr | None]] = {}
        self._used: dict[int, int] = {}
        self._nonempty: list[int] = []
        self._index: dict[int, int] = {}

    def get(self, bucket: int, pos: int) -> NetAddr | None:
        row = self._rows.get(bucket)
        return None if row is None else row[pos]

    def put(self, bucket: int, pos: int, addr: NetAddr) -> None:
        row = self._rows.get(bucket)
        if row is None:
            row = self._rows[bucket] = [None] * self.size
            self._used[bucket] = 0
            self._index[bucket] = len(self._nonempty)
            self._nonempty.append(bucket)
        assert row[pos] is None, "slot must be cleared first"
        row[pos] = addr
        self._used[bucket] += 1
        self.count += 1

    def clear(self, bucket: int, pos: int) -> None:
        row = self._rows[bucket]
        row[pos] = None
        self.count -= 1
        self._used[bucket] -= 1
        if self._used[bucket] == 0:
            del self._rows[bucket], self._used[bucket]
            i = self._index.pop(bucket)
            last = self._nonempty.pop()
            if last != bucket:
                self._nonempty[i] = last
                self._index[last] = i

    def random_row(self, rng: random.Random) -> list[NetAddr | None]:
        return self._rows[self._nonempty[rng.randrange(len(self._nonempty))]]

    def used_buckets(self) -> frozenset[int]:
        return frozenset(self._rows)


def _check_shape(new_buckets: int, tried_buckets: int, bucket_size: int) -> None:
    for name, value, top in (
        ("new_buckets", new_buckets, MAX_BUCKETS),
        ("tried_buckets", tried_buckets, MAX_BUCKETS),
        ("bucket_size", bucket_size, MAX_BUCKET_SIZE),
    ):
        if type(value) is not int or not 1 <= value <= top:
            raise ValueError(f"{name} must be an int in 1..{top}, got {value!r}")


class AddrMan:
    """The new/tried address book (see the module docstring).

    Args:
        key: the 32-byte secret that places addresses; keep it with the data.
        new_buckets, tried_buckets, bucket_size: the table shape (tests shrink it).
        rng: randomness for `select`, `sample` and extra references; by
            default a `random.Random` seeded from a hash of the key (a node
            may pass `random.SystemRandom()`).
        allow_local: accept loopback and private addresses (test networks).

    Raises:
        ValueError: a key that is not 32 bytes, or a shape out of range.
    """

    def __init__(
        self,
        key: bytes,
        *,
        new_buckets: int = NEW_BUCKET_COUNT,
        tried_buckets: int = TRIED_BUCKET_COUNT,
        bucket_size: int = BUCKET_SIZE,
        rng: random.Random | None = None,
        allow_local: bool = False,
    ) -> None:
        if not isinstance(key, bytes) or len(key) != KEY_SIZE:
            raise ValueError(f"the addrman key must be {KEY_SIZE} bytes")
        _check_shape(new_buckets, tried_buckets, bucket_size)
        self._key = key
        seed = blake3_keyed(key, b"bcai/addrman/rng")  # the key itself never seeds MT
        self._rng = rng if rng is not None else random.Random(seed)
        self.allow_local = allow_local
        self._new = _Table(new_buckets, bucket_size)
        self._tried = _Table(tried_buckets, bucket_size)
        self._entries: dict[NetAddr, _Entry] = {}
        self._collisions: dict[NetAddr, None] = {}  # insertion-ordered set

    @property
    def key(self) -> bytes:
        return self._key

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, addr: object) -> bool:
        return addr in self._entries

    def counts(self) -> tuple[int, int]:
        """(addresses in new, addresses in tried)."""
        return len(self._entries) - self._tried.count, self._tried.count

    # -- placement ---------------------------------------------------------

    def _hash(self, *parts: bytes) -> int:
        msg = b"".join(len(p).to_bytes(2, "big") + p for p in parts)
        return int.from_bytes(blake3_keyed(self._key, msg, 8), "big")

    def new_bucket(self, addr: NetAddr, source_group: str) -> int:
        """The new bucket `addr` goes to when heard of from `source_group`."""
        src = source_group.encode()
        slice_ = self._hash(b"new-slice", addr.netgroup.encode(), src)
        slice_ %= NEW_BUCKETS_PER_SOURCE_GROUP
        return self._hash(b"new-bucket", src, slice_.to_bytes(8, "big")) % self._new.buckets

    def tried_bucket(self, addr: NetAddr) -> int:
        """The one tried bucket `addr` may occupy."""
        slice_ = self._hash(b"tried-slice", addr.key_bytes()) % TRIED_BUCKETS_PER_GROUP
        group = addr.netgroup.encode()
        return self._hash(b"tried-bucket", group, slice_.to_bytes(8, "big")) % self._tried.buckets

    def position(self, addr: NetAddr, bucket: int, *, tried: bool) -> int:
        """The slot of `addr` within `bucket` of the new or tried table."""
        table = b"tried" if tried else b"new"
        return self._hash(b"position", table, bucket.to_bytes(4, "big"), addr.key_bytes()) % (
            self._tried.size if tried else self._new.size
        )

    def find(self, addr: NetAddr) -> AddressPosition | None:
        """Where `addr` is stored, or None if unknown."""
        entry = self._entries.get(addr)
        if entry is None:
            return None
        if entry.tried:
            bucket = self.tried_bucket(addr)
            return AddressPosition(True, ((bucket, self.position(addr, bucket, tried=True)),))
        slots = tuple((b, self.position(addr, b, tried=False)) for b in entry.new_refs)
        return AddressPosition(False, slots)

    def new_buckets_used(self) -> frozenset[int]:
        """The new buckets holding at least one address."""
        return self._new.used_buckets()

    def tried_buckets_used(self) -> frozenset[int]:
        """The tried buckets holding at least one address."""
        return self._tried.used_buckets()

    # -- adding and feedback -------------------------------------------------

    def is_acceptable(self, addr: NetAddr) -> bool:
        """Whether `addr` may be stored: never port 0, unspecified or multicast;
        loopback, private and reserved ranges only with `allow_local`."""
        ip = addr.ip
        if addr.port == 0 or ip.is_unspecified or ip.is_multicast:
            return False
        return self.allow_local or ip.is_global

    def add(
        self, addr: NetAddr, source_ip: str, now: float, *, last_seen: float | None = None
    ) -> bool:
        """Records that `source_ip` told us about `addr` (last seen at
        `last_seen`, default `now`).

        Returns:
            True if `addr` took a new-table slot it did not hold before.

        Raises:
            ValueError: `source_ip` is not an IP literal.
        """
        group = _source_group(source_ip)
        if not self.is_acceptable(addr):
            return False
        seen = float(now if last_seen is None else last_seen)
        entry = self._entries.get(addr)
        if entry is None:
            entry = _Entry(addr, group, seen)
        elif not self._refresh(entry, seen, now):
            return False
        bucket = self.new_bucket(addr, group)
        if bucket in entry.new_refs:
            return False
        pos = self.position(addr, bucket, tried=False)
        occupant = self._new.get(bucket, pos)
        if occupant is not None:
            held = self._entries[occupant]
            replaceable = held.is_terrible(now) or (len(held.new_refs) > 1 and not entry.new_refs)
            if not replaceable:
                return False
            self._clear_new(bucket, pos)
        entry.new_refs[bucket] = group
        self._new.put(bucket, pos, addr)
        self._entries.setdefault(addr, entry)
        return True

    def _refresh(self, entry: _Entry, seen: float, now: float) -> bool:
        """Updates a known entry's last-seen time; whether it may take one more
        new bucket (Bitcoin's AddSingle for an existing address)."""
        newer = seen > entry.last_seen
        interval = 3600.0 if now - seen < 86400.0 else 86400.0
        if entry.last_seen < seen - interval:
            entry.last_seen = seen
        if not newer or entry.tried or len(entry.new_refs) >= NEW_BUCKETS_PER_ADDRESS:
            return False
        # each further reference is 2^refcount times harder to get
        return self._rng.randrange(1 << len(entry.new_refs)) == 0

    def attempt(self, addr: NetAddr, now: float) -> None:
        """A connection to `addr` was tried and failed (counts toward terrible)."""
        entry = self._entries.get(addr)
        if entry is not None:
            entry.last_try = float(now)
            entry.attempts = min(entry.attempts + 1, _MAX_ATTEMPTS)

    def good(self, addr: NetAddr, now: float) -> bool:
        """A connection to `addr` worked: move it to tried.

        Returns:
            True if it moved now; False if unknown, already tried, or its
            tried slot is held (then a collision is queued for
            `collision_to_test`, up to `TRIED_COLLISIONS_MAX`).
        """
        entry = self._entries.get(addr)
        if entry is None:
            return False
        entry.last_success = entry.last_try = float(now)
        entry.attempts = 0
        if entry.tried:
            return False
        bucket = self.tried_bucket(addr)
        if self._tried.get(bucket, self.position(addr, bucket, tried=True)) is not None:
            if len(self._collisions) < TRIED_COLLISIONS_MAX:
                self._collisions[addr] = None
            return False
        self._make_tried(entry)
        return True

    def collision_to_test(self) -> NetAddr | None:
        """A tried address that a newly good address wants the slot of: dial
        it (a feeler) and report with `resolve_collision`. None if none."""
        for addr in list(self._collisions):
            entry = self._entries.get(addr)
            if entry is None or entry.tried:
                del self._collisions[addr]
            elif self._tried_occupant(addr) is None:  # the slot came free
                del self._collisions[addr]
                self._make_tried(entry)
        if not self._collisions:
            return None
        pending = self._rng.choice(list(self._collisions))
        return self._tried_occupant(pending)

    def resolve_collision(self, old_addr: NetAddr, alive: bool, now: float) -> NetAddr | None:
        """The feeler to `old_addr` (from `collision_to_test`) answered or not.

        If it answered, it keeps its tried slot and the newcomers stay in
        new. If not, it goes back to the new table and the first newcomer
        takes its slot.

        Returns:
            The address that moved into tried, if any.
        """
        old = self._entries.get(old_addr)
        if old is None or not old.tried:
            return None
        waiting = [a for a in self._collisions if self._tried_occupant(a) == old_addr]
        for addr in waiting:
            del self._collisions[addr]
        if alive:
            old.last_success = old.last_try = float(now)
            old.attempts = 0
            return None
        self.attempt(old_addr, now)
        if not waiting:
            return None
        self._make_tried(self._entries[waiting[0]])
        return waiting[0]

    def _tried_occupant(self, addr: NetAddr) -> NetAddr | None:
        bucket = self.tried_bucket(addr)
        return self._tried.get(bucket, self.position(addr, bucket, tried=True))

    def _clear_new(self, bucket: int, pos: int) -> None:
        """Empties a new slot; an address left in no bucket is forgotten."""
        addr = self._new.get(bucket, pos)
        if addr is None:
            return
        self._new.clear(bucket, pos)
        entry = self._entries[addr]
        del entry.new_refs[bucket]
        if not entry.new_refs and not entry.tried:
            del self._entries[addr]
            self._collisions.pop(addr, None)

    def _make_tried(self, entry: _Entry) -> None:
        """Moves `entry` from its new buckets to its tried slot, sending the
        slot's occupant back to the new table (Bitcoin's MakeTried)."""
        addr = entry.addr
        for bucket in list(entry.new_refs):
            self._new.clear(bucket, self.position(addr, bucket, tried=False))
        entry.new_refs.clear()
        bucket = self.tried_bucket(addr)
        pos = self.position(addr, bucket, tried=True)
        evicted = self._tried.get(bucket, pos)
        if evicted is not None:
            self._tried.clear(bucket, pos)
            old = self._entries[evicted]
            old.tried = False
            new_bucket = self.new_bucket(evicted, old.source_group)
            new_pos = self.position(evicted, new_bucket, tried=False)
            self._clear_new(new_bucket, new_pos)
            old.new_refs[new_bucket] = old.source_group
            self._new.put(new_bucket, new_pos, evicted)
        entry.tried = True
        self._tried.put(bucket, pos, addr)

    # -- choosing ------------------------------------------------------------

    def select(self, now: float, *, new_only: bool = False) -> NetAddr | None:
        """An address to dial: tried or new with even odds (when both have
        entries), then a random non-empty bucket and position, accepted with
        the entry's chance (Bitcoin's Select). None if there is nothing."""
        if new_only:
            table = self._new
        elif self._tried.count and (not self._new.count or self._rng.getrandbits(1)):
            table = self._tried
        else:
            table = self._new
        if not table.count:
            return None
        factor = 1.0
        size = table.size
        while True:
            row = table.random_row(self._rng)
            start = self._rng.randrange(size)
            addr = next(a for a in row[start:] + row[:start] if a is not None)
            odds = factor * self._entries[addr].chance(now)
            if self._rng.getrandbits(30) < odds * (1 << 30):
                return addr
            factor *= 1.2

    def feeler_candidate(self, now: float) -> NetAddr | None:
        """A new-table address to test with a short-lived feeler connection."""
        return self.select(now, new_only=True)

    def sample(self, n: int, now: float) -> list[NetAddr]:
        """Up to `n` (at most `MAX_SAMPLE`) random known addresses, none
        terrible, for peer exchange."""
        want = max(0, min(n, MAX_SAMPLE))
        pool = list(self._entries)
        out: list[NetAddr] = []
        for i in range(len(pool)):
            if len(out) >= want:
                break
            j = self._rng.randrange(i, len(pool))
            pool[i], pool[j] = pool[j], pool[i]
            if not self._entries[pool[i]].is_terrible(now):
                out.append(pool[i])
        return out

    # -- persistence ---------------------------------------------------------

    def encode(self) -> bytes:
        """The whole book, key and placements included (pending collisions
        are not kept)."""
        from bcai.net._addrman_store import encode_addrman  # noqa: PLC0415 (it imports us)

        return encode_addrman(self)

    @classmethod
    def decode(
        cls,
        data: bytes,
        *,
        key_check: bytes | None = None,
        rng: random.Random | None = None,
        allow_local: bool = False,
    ) -> AddrMan:
        """Loads what `encode` wrote, checking every placement against the key.

        Args:
            key_check: if given, the stored key must be this one.
            rng, allow_local: as for the constructor.

        Raises:
            AddrManError: anything wrong with `data` (see its codes).
        """
        from bcai.net._addrman_store import decode_addrman  # noqa: PLC0415 (it imports us)

        return decode_addrman(cls, data, key_check=key_check, rng=rng, allow_local=allow_local)


# The stored-record classes live in `_addrman_store`, which imports this module;
# they stay importable from here, loaded on first use.
_STORE_NAMES = frozenset({"_NewRef", "_Seconds", "_StoredAddrMan", "_StoredEntry", "_TriedSlot"})


def __getattr__(name: str) -> object:
    if name in _STORE_NAMES:
        from bcai.net import _addrman_store  # noqa: PLC0415 (it imports us)

        return getattr(_addrman_store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
