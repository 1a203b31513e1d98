"""Kademlia core: bucket splitting and exact closest(), liveness-checked
eviction, provider TTLs and caps, iterative lookups in a simulated
100-node network (with dead nodes), and the wire records under fuzzing."""

from __future__ import annotations

import ipaddress
import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bcai import codec
from bcai.net._kademlia import (
    ID_BITS,
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
    format_address,
    parse_address,
    xor_distance,
)

LOCAL = bytes.fromhex("5a" * 32)


def contact(peer_id: bytes, n: int = 1) -> Contact:
    return Contact(peer_id, f"10.0.{n // 250}.{n % 250 + 1}", 9000 + n % 1000)


def id_at(cpl: int, rng: random.Random, local: bytes = LOCAL) -> bytes:
    """A random id sharing exactly `cpl` leading bits with `local`."""
    loc = int.from_bytes(local, "big")
    flip = 1 << (ID_BITS - cpl - 1)
    low = rng.getrandbits(ID_BITS - cpl - 1)
    value = ((loc >> (ID_BITS - cpl - 1)) ^ 1) << (ID_BITS - cpl - 1) | low
    assert (value ^ loc) & ~(flip * 2 - 1) == 0 and (value ^ loc) & flip
    return value.to_bytes(32, "big")


def check_table(table: RoutingTable, *, minimal: bool = True) -> None:
    """The bucket tree's invariants."""
    local = int.from_bytes(table.local_id, "big")
    buckets = table.buckets()
    tiles = sorted(buckets, key=lambda b: b.lo)
    assert tiles[0].lo == 0 and tiles[-1].hi == 1 << ID_BITS
    for a, b in itertools.pairwise(tiles):
        assert a.hi == b.lo  # the ranges tile the id space
    owners = [b for b in buckets if b.lo <= local < b.hi]
    assert owners == [buckets[-1]]
    for b in buckets:
        size = 1 << (ID_BITS - b.depth)
        assert b.lo % size == 0 and b.hi - b.lo == size
        if b is not buckets[-1]:
            assert b.prefix == (local >> (ID_BITS - b.depth)) ^ 1  # sibling holds local
        assert len(b.contacts) <= table.k
        assert not set(b.contacts) & set(b.replacements)
        for pid in [*b.contacts, *b.replacements]:
            assert b.covers(pid)
        for c in b.contacts.values():
            assert table.get(c.peer_id) == c
    if minimal and len(buckets) > 1:  # the last split was needed: its parent overflowed
        parent = buckets[-2:]
        assert sum(len(b.contacts) + len(b.replacements) for b in parent) > table.k
    assert len(table) == sum(len(b.contacts) for b in buckets)


# --- routing table ---------------------------------------------------------


def test_splitting_keeps_the_tree_correct() -> None:
    rng = random.Random(1)
    table = RoutingTable(LOCAL, k=8)
    ids = [rng.randbytes(32) for _ in range(600)] + [
        id_at(rng.randrange(40), rng) for _ in range(400)
    ]
    rng.shuffle(ids)
    for n, pid in enumerate(ids):
        c = contact(pid, n)
        stale = table.update(c, now=n)
        assert (stale is None) == (table.get(pid) == c)  # added, or a ping is asked for
        if stale is not None:
            table.ping_result(stale.peer_id, alive=True, now=n)
    check_table(table)
    assert len(table.buckets()) > 10  # the clustered ids forced deep splits
    # every id near us (a bucket that never filled) is in the table
    for pid in ids:
        bucket = table.buckets()[min(cpl(pid), len(table.buckets()) - 1)]
        if len(bucket.contacts) < 8:
            assert table.get(pid) is not None


def cpl(pid: bytes) -> int:
    return ID_BITS - xor_distance(pid, LOCAL).bit_length()


def test_only_the_local_bucket_splits() -> None:
    rng = random.Random(2)
    table = RoutingTable(LOCAL, k=4)
    far = [id_at(0, rng) for _ in range(10)]
    for n, pid in enumerate(far):
        table.update(contact(pid, n), now=n)
    # the far half filled at depth 1 and did not split further
    assert [b.depth for b in table.buckets()] == [1, 1]
    assert len(table.buckets()[0].contacts) == 4
    assert len(table) == 4
    check_table(table)


def test_refuses_local_id_and_moves_known_to_tail() -> None:
    table = RoutingTable(LOCAL, k=4)
    assert table.update(contact(LOCAL), now=0) is None
    assert len(table) == 0
    rng = random.Random(3)
    a, b = id_at(0, rng), id_at(0, rng)
    table.update(contact(a, 1), now=0)
    table.update(contact(b, 2), now=1)
    moved = Contact(a, "2001:db8::7", 4000)
    table.update(moved, now=2)
    assert list(table.buckets()[0].contacts.values()) == [contact(b, 2), moved]
    assert table.remove(a) and not table.remove(a)
    assert table.get(a) is None and len(table) == 1


@settings(max_examples=60, deadline=None)
@given(
    k=st.sampled_from([1, 2, 3, 20]),
    cpls=st.lists(st.integers(0, 30), min_size=0, max_size=120),
    seed=st.integers(0, 2**32),
    target=st.binary(min_size=32, max_size=32),
    count=st.integers(1, 30),
)
def test_closest_is_exact(k: int, cpls: list[int], seed: int, target: bytes, count: int) -> None:
    rng = random.Random(seed)
    table = RoutingTable(LOCAL, k=k)
    evicted = False
    for n, c in enumerate(cpls):
        stale = table.update(contact(id_at(c, rng), n), now=n)
        if stale is not None:
            alive = rng.random() < 0.5
            evicted |= not alive
            table.ping_result(stale.peer_id, alive=alive, now=n)
    check_table(table, minimal=not evicted)
    known = [c for b in table.buckets() for c in b.contacts.values()]
    expected = sorted(known, key=lambda c: xor_distance(c.peer_id, target))[:count]
    assert table.closest(target, count) == expected


# --- liveness-checked eviction ---------------------------------------------


def full_far_bucket(k: int = 2) -> tuple[RoutingTable, list[bytes]]:
    rng = random.Random(4)
    table = RoutingTable(LOCAL, k=k, replacements=2)
    ids = [id_at(0, rng) for _ in range(k + 2)]
    for n, pid in enumerate(ids[:k]):
        assert table.update(contact(pid, n), now=n) is None
    return table, ids


def test_alive_stale_contact_is_kept() -> None:
    table, ids = full_far_bucket()
    stale = table.update(contact(ids[2], 2), now=10)
    assert stale is not None and stale.peer_id == ids[0]  # least recently seen
    assert table.get(ids[2]) is None
    table.ping_result(ids[0], alive=True, now=11)
    far = table.buckets()[0]
    assert list(far.contacts) == [ids[1], ids[0]]  # pinged one moved to the tail
    assert list(far.replacements) == [ids[2]]
    # the next newcomer asks about the new least-recently-seen contact
    stale = table.update(contact(ids[3], 3), now=12)
    assert stale is not None and stale.peer_id == ids[1]


def test_dead_stale_contact_is_replaced_by_freshest() -> None:
    table, ids = full_far_bucket()
    stale = table.update(contact(ids[2], 2), now=10)
    assert stale is not None
    assert table.update(contact(ids[3], 3), now=11) is None  # ping already out
    table.ping_result(stale.peer_id, alive=False, now=12)
    far = table.buckets()[0]
    assert list(far.contacts) == [ids[1], ids[3]]  # freshest replacement took the slot
    assert list(far.replacements) == [ids[2]]
    assert table.get(ids[0]) is None


def test_unanswered_ping_is_asked_again_after_timeout() -> None:
    table, ids = full_far_bucket()
    assert table.update(contact(ids[2], 2), now=0) is not None
    assert table.update(contact(ids[3], 3), now=5) is None
    again = table.update(contact(ids[3], 3), now=10.5)
    assert again is not None and again.peer_id == ids[0]


def test_replacement_cache_is_bounded_and_fresh() -> None:
    rng = random.Random(5)
    table = RoutingTable(LOCAL, k=1, replacements=2)
    ids = [id_at(0, rng) for _ in range(5)]
    for n, pid in enumerate(ids):
        stale = table.update(contact(pid, n), now=n)
        if stale is not None:
            table.ping_result(stale.peer_id, alive=True, now=n)
    assert list(table.buckets()[0].replacements) == ids[3:]


# --- provider store --------------------------------------------------------


def test_providers_expire() -> None:
    store = ProviderStore(ttl_s=100)
    key = b"k" * 32
    a, b = contact(b"a" * 32, 1), contact(b"b" * 32, 2)
    assert store.add(key, a, now=0)
    assert store.add(key, b, now=50)
    assert store.get(key, now=60) == [b, a]
    assert store.get(key, now=100) == [b]  # a's TTL ran out
    assert store.add(key, b, now=120)  # refresh extends b; a is dropped on the way
    assert len(store) == 1 and store.expire(now=200) == 0
    assert store.get(key, now=219) == [b]
    assert store.expire(now=220) == 1
    assert store.get(key, now=220) == [] and store.key_count() == 0 and len(store) == 0


def test_per_key_cap_keeps_freshest() -> None:
    store = ProviderStore(max_providers_per_key=3)
    key = b"k" * 32
    cs = [contact(bytes([i]) * 32, i) for i in range(1, 6)]
    for t, c in enumerate(cs[:3]):
        store.add(key, c, now=t)
    store.add(key, cs[0], now=3)  # re-announced: now the freshest
    store.add(key, cs[3], now=4)  # evicts cs[1], the stalest
    store.add(key, cs[4], now=5)  # evicts cs[2]
    assert store.get(key, now=6) == [cs[4], cs[3], cs[0]]
    assert len(store) == 3


def test_max_keys_refuses_new_keys() -> None:
    store = ProviderStore(max_keys=2, ttl_s=10)
    p = contact(b"p" * 32)
    assert store.add(b"1" * 32, p, now=0) and store.add(b"2" * 32, p, now=1)
    assert not store.add(b"3" * 32, p, now=2)
    assert store.add(b"1" * 32, contact(b"q" * 32, 2), now=3)  # existing key still fine
    assert store.get(b"3" * 32, now=3) == []
    assert store.add(b"3" * 32, p, now=11.5)  # key 2 expired, freeing a slot
    with pytest.raises(DhtError) as err:
        store.add(b"short", p, now=12)
    assert err.value.code == "dht-bad-key"


# --- lookups in a simulated network ----------------------------------------


class Network:
    """100 nodes, each with a table filled from a random subset of the rest
    (pings answered: every node is alive when the tables are built)."""

    def __init__(self, seed: int, size: int = 100, known: int = 60) -> None:
        self.rng = random.Random(seed)
        self.contacts = [contact(self.rng.randbytes(32), n) for n in range(size)]
        self.tables: dict[bytes, RoutingTable] = {}
        for me in self.contacts:
            table = RoutingTable(me.peer_id)
            others = [c for c in self.contacts if c is not me]
            for n, c in enumerate(self.rng.sample(others, known)):
                stale = table.update(c, now=n)
                if stale is not None:
                    table.ping_result(stale.peer_id, alive=True, now=n)
            self.tables[me.peer_id] = table

    def run(self, start: Contact, lookup: Lookup, dead: set[bytes]) -> list[bytes]:
        """Answers queries one at a time, in random order; returns who was asked."""
        asked: list[bytes] = []
        pending: list[Contact] = []
        while not lookup.done:
            pending += lookup.next_queries()
            assert pending, "not done, yet nothing to ask and nothing in flight"
            assert lookup.in_flight == len(pending) <= lookup.alpha
            c = pending.pop(self.rng.randrange(len(pending)))
            asked.append(c.peer_id)
            if c.peer_id in dead:
                lookup.on_failure(c)
            else:
                lookup.on_response(c, self.tables[c.peer_id].closest(lookup.target))
        assert start.peer_id not in asked
        return asked


def true_closest(ids: list[bytes], target: bytes, k: int = 20) -> list[bytes]:
    return sorted(ids, key=lambda pid: xor_distance(pid, target))[:k]


@pytest.mark.parametrize("dead_fraction", [0.0, 0.2])
def test_lookup_finds_the_true_k_closest(dead_fraction: float) -> None:
    net = Network(seed=7)
    ids = [c.peer_id for c in net.contacts]
    dead = set(net.rng.sample(ids, int(dead_fraction * len(ids))))
    live = [pid for pid in ids if pid not in dead]
    all_hops = []
    for _ in range(8):
        target = net.rng.randbytes(32)
        start = net.rng.choice([c for c in net.contacts if c.peer_id not in dead])
        table = net.tables[start.peer_id]
        lookup = Lookup(target, table.closest(target, 3), local_id=start.peer_id)
        asked = net.run(start, lookup, dead)
        assert len(asked) == len(set(asked))  # nobody is asked twice
        expected = true_closest([pid for pid in live if pid != start.peer_id], target)
        assert [c.peer_id for c in lookup.result()] == expected
        assert 1 <= lookup.hops <= 6
        all_hops.append(lookup.hops)
        if dead_fraction:
            assert dead & set(asked)  # some queries failed and were tolerated
    assert max(all_hops) >= 2  # three seeds alone never suffice


def test_lookup_for_own_id_never_queries_self() -> None:
    net = Network(seed=8)
    me = net.contacts[0]
    lookup = Lookup(me.peer_id, net.tables[me.peer_id].closest(me.peer_id), local_id=me.peer_id)
    net.run(me, lookup, dead=set())
    others = [c.peer_id for c in net.contacts[1:]]
    assert [c.peer_id for c in lookup.result()] == true_closest(others, me.peer_id)


def test_provider_lookup_stops_when_enough_are_found() -> None:
    net = Network(seed=9)
    key = net.rng.randbytes(32)
    holders = set(true_closest([c.peer_id for c in net.contacts], key, 5))
    provider = contact(b"\x01" * 32, 999)
    lookup = Lookup(key, net.tables[net.contacts[0].peer_id].closest(key), max_providers=1)
    while not lookup.done:
        batch = lookup.next_queries()
        assert batch
        for c in batch:
            found = [provider] if c.peer_id in holders else []
            lookup.on_response(c, net.tables[c.peer_id].closest(key), found)
    assert lookup.providers == [provider]
    assert len(lookup.result()) < 20  # stopped early


def test_lookup_edge_cases() -> None:
    rng = random.Random(10)
    target = rng.randbytes(32)
    assert Lookup(target, []).done and Lookup(target, []).result() == []
    seeds = [contact(rng.randbytes(32), n) for n in range(5)]
    lookup = Lookup(target, seeds, k=2, alpha=2)
    first = lookup.next_queries()
    assert len(first) == 2 and lookup.next_queries() == []  # alpha reached
    assert first == sorted(seeds, key=lambda c: xor_distance(c.peer_id, target))[:2]
    lookup.on_failure(first[0])
    lookup.on_response(first[0], [])  # late answer after a failure: ignored
    lookup.on_response(first[1], [])
    stranger = contact(rng.randbytes(32), 99)
    lookup.on_response(stranger, [])  # never asked: ignored
    assert stranger not in lookup.result() and first[0] not in lookup.result()
    while not lookup.done:
        batch = lookup.next_queries()
        assert batch
        for c in batch:
            lookup.on_response(c, seeds)  # repeats are not asked again
    assert len(lookup.result()) == 2
    assert lookup.hops == 1


# --- wire records ----------------------------------------------------------


def test_contact_record_round_trip() -> None:
    for host in ["192.0.2.1", "2001:db8::1", "::ffff:10.0.0.1"]:
        c = Contact(b"\x07" * 32, str(ipaddress.ip_address(host)), 65535)
        record = contact_to_record(c)
        assert contact_from_record(ContactRecord.decode(record.encode())) == c
    rec = ContactRecord(b"\x07" * 32, ("dns4:example.org:1", "[2001:DB8:0::1]:80"))
    assert contact_from_record(rec) == Contact(b"\x07" * 32, "2001:db8::1", 80)


def test_message_round_trips() -> None:
    rng = random.Random(11)
    records = [contact_to_record(contact(rng.randbytes(32), n)) for n in range(20)]
    key = rng.randbytes(32)
    for msg in [
        FindNode(key),
        Nodes(tuple(records)),
        AddProvider(key, records[0]),
        GetProviders(key),
        Providers(tuple(records[:3]), tuple(records)),
    ]:
        assert decode_message(type(msg), msg.encode()) == msg
    assert contacts_from_records(Nodes(tuple(records)).contacts) == [
        contact_from_record(r) for r in records
    ]
    with pytest.raises(codec.EncodeError):
        Nodes(tuple(records) * 2).encode()
    assert format_address("2001:db8::1", 80) == "[2001:db8::1]:80"


@pytest.mark.parametrize(
    "text",
    [
        "1.2.3.4",
        "1.2.3.4:",
        "1.2.3.4:0",
        "1.2.3.4:65536",
        "1.2.3.4:080",
        "1.2.3.4:+80",
        "1.2.3.4: 80",
        "1.2.3.4:8_0",
        "1.2.3.4:٨٠",
        "01.2.3.4:80",
        "example.org:80",
        "::1:80",
        "[1.2.3.4]:80",
        "[fe80::1%eth0]:80",
        "[::1]",
        ":80",
        "",
    ],
)
def test_bad_addresses(text: str) -> None:
    with pytest.raises(DhtError) as err:
        parse_address(text)
    assert err.value.code == "dht-bad-address"
    with pytest.raises(DhtError):
        contact_from_record(ContactRecord(b"\x01" * 32, (text,)))


def test_bad_contacts() -> None:
    with pytest.raises(DhtError) as err:
        contact_from_record(ContactRecord(b"\x01" * 32, ()))
    assert err.value.code == "dht-malformed"
    with pytest.raises(DhtError) as err:
        contact_from_record(ContactRecord(b"\x01" * 31, ("1.2.3.4:5",)))
    assert err.value.code == "dht-malformed"
    for host, port in [("10.0.0.01", 1), ("::0:1", 1), ("10.0.0.1", 0), ("10.0.0.1", True)]:
        with pytest.raises(DhtError):
            Contact(b"\x01" * 32, host, port)
    with pytest.raises(DhtError):
        decode_message(FindNode, b"\x00" * 31)


MESSAGE_TYPES: list[type[codec.Record]] = [
    ContactRecord,
    FindNode,
    Nodes,
    AddProvider,
    GetProviders,
    Providers,
]


def valid_encodings() -> list[bytes]:
    rng = random.Random(12)
    recs = tuple(contact_to_record(contact(rng.randbytes(32), n)) for n in range(3))
    return [
        recs[0].encode(),
        Nodes(recs).encode(),
        AddProvider(b"k" * 32, recs[1]).encode(),
        Providers(recs[:1], recs).encode(),
    ]


def decode_all(data: bytes) -> None:
    for cls in MESSAGE_TYPES:
        try:
            msg = decode_message(cls, data)
            if isinstance(msg, ContactRecord):
                contact_from_record(msg)
            elif isinstance(msg, Nodes):
                contacts_from_records(msg.contacts)
            elif isinstance(msg, Providers):
                contacts_from_records(msg.providers + msg.closer)
            elif isinstance(msg, AddProvider):
                contact_from_record(msg.provider)
        except (DhtError, codec.DecodeError):
            pass


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=400))
def test_fuzz_random_bytes(data: bytes) -> None:
    decode_all(data)


@settings(max_examples=200, deadline=None)
@given(
    which=st.integers(0, 3),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
    cut=st.integers(0, 10_000),
)
def test_fuzz_mutated_messages(which: int, edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(valid_encodings()[which])
    for pos, byte in edits:
        data[pos % len(data)] = byte
    decode_all(bytes(data[: max(cut, 1)]))
