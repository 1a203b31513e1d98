"""The address book: new/tried tables, test-before-evict, the bucket limits
that keep one source group from eclipsing us, terrible-entry replacement,
and a persistence format that is checked on load."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bcai.errors import BcaiError
from bcai.net import netgroup
from bcai.net._addrman import (
    HORIZON_S,
    MAX_SAMPLE,
    RETRIES,
    AddrMan,
    AddrManError,
    NetAddr,
    _StoredAddrMan,
)

KEY = bytes(range(32))
NOW = 1_700_000_000.0
DAY = 86400.0


def addr(i: int, port: int = 8333) -> NetAddr:
    """The i-th distinct public IPv4 address, spread over many /16s (11.0/16 … 99.255/16)."""
    return NetAddr(f"{11 + i % 89}.{(i // 89) % 256}.{(i // 22784) % 256}.{1 + i % 250}", port)


def source(g: int) -> str:
    """An IP in the g-th distinct public source /16 (150.x … 199.x)."""
    return f"{150 + g // 256}.{g % 256}.7.7"


def book(new_buckets: int = 1024, tried_buckets: int = 256, bucket_size: int = 64) -> AddrMan:
    return AddrMan(
        KEY,
        new_buckets=new_buckets,
        tried_buckets=tried_buckets,
        bucket_size=bucket_size,
        rng=random.Random(7),
    )


def test_netaddr_is_canonical() -> None:
    assert NetAddr("::ffff:1.2.3.4", 1) == NetAddr("1.2.3.4", 1)
    assert NetAddr("2001:DB8::1", 1).host == "2001:db8::1"
    assert NetAddr("1.2.3.4", 1).netgroup == "1.2.0.0/16"
    assert str(NetAddr("2a00::1", 80)) == "[2a00::1]:80"
    for host, port in [("example.com", 1), ("1.2.3.4", 70000), ("fe80::1%eth0", 1)]:
        with pytest.raises(ValueError):
            NetAddr(host, port)


@pytest.mark.parametrize(
    ("host", "port", "with_allow_local"),
    [
        ("127.0.0.1", 8333, True),
        ("10.1.2.3", 8333, True),
        ("192.168.1.1", 8333, True),
        ("::1", 8333, True),
        ("0.0.0.0", 8333, False),
        ("224.0.0.1", 8333, False),
        ("11.2.3.4", 0, False),
    ],
)
def test_local_and_unroutable_addresses_refused_by_default(
    host: str, port: int, with_allow_local: bool
) -> None:
    strict = book()
    assert not strict.add(NetAddr(host, port), source(0), NOW)
    assert len(strict) == 0
    local = AddrMan(KEY, allow_local=True)
    assert local.add(NetAddr(host, port), "127.0.0.1", NOW) is with_allow_local
    assert len(local) == int(with_allow_local)


def test_add_select_good() -> None:
    b = book()
    assert b.select(NOW) is None
    a = addr(1)
    assert b.add(a, source(0), NOW)
    assert not b.add(a, source(0), NOW)  # nothing new
    assert len(b) == 1 and a in b and b.counts() == (1, 0)
    assert b.select(NOW) == a and b.feeler_candidate(NOW) == a
    assert not b.good(addr(2), NOW)  # unknown: never enters tried
    assert b.good(a, NOW) and b.counts() == (0, 1)
    position = b.find(a)
    assert position is not None and position.tried
    assert position.slots == ((b.tried_bucket(a), b.position(a, b.tried_bucket(a), tried=True)),)
    assert not b.good(a, NOW)  # already tried
    assert b.select(NOW) == a
    assert b.feeler_candidate(NOW) is None  # the new table is empty


def test_more_sources_give_more_references_up_to_eight() -> None:
    b = book()
    a = addr(5)
    for g in range(1000):  # each with fresher news, so each may add a reference
        b.add(a, source(g), NOW, last_seen=NOW - 1000 + g)
        position = b.find(a)
        assert position is not None and not position.tried
        if g == 20:  # the k-th extra reference is taken with odds 1/2^k
            assert 2 <= len(position.slots) <= 6
    position = b.find(a)
    assert position is not None and len(position.slots) == 8  # ADDRMAN_NEW_BUCKETS_PER_ADDRESS
    assert len(b) == 1 and b.counts() == (1, 0)
    possible = {b.new_bucket(a, netgroup(source(g))) for g in range(1000)}
    assert {bucket for bucket, _ in position.slots} <= possible


def test_failed_attempts_lower_the_chance_of_selection() -> None:
    b = book()
    flaky, steady = addr(1), addr(2)
    b.add(flaky, source(1), NOW)
    b.add(steady, source(2), NOW)
    for _ in range(8):
        b.attempt(flaky, NOW)
    draws = [b.select(NOW + 3600) for _ in range(500)]
    assert draws.count(flaky) < 0.15 * len(draws)  # chance 0.66^8 against 1
    assert draws.count(steady) + draws.count(flaky) == len(draws)


def collided() -> tuple[AddrMan, NetAddr, NetAddr]:
    """A book whose tried table is one slot: `old` holds it, `new` wants it."""
    b = book(tried_buckets=1, bucket_size=1)
    old, new = addr(1), addr(2)
    assert b.add(old, source(1), NOW) and b.add(new, source(2), NOW)
    assert b.good(old, NOW)
    assert not b.good(new, NOW + 10)  # no eviction yet: a collision to test
    assert b.counts() == (1, 1)
    assert b.collision_to_test() == old
    return b, old, new


def tried(b: AddrMan, a: NetAddr) -> bool | None:
    position = b.find(a)
    return None if position is None else position.tried


def test_tried_collision_keeps_the_old_entry_when_it_answers() -> None:
    b, old, new = collided()
    assert b.resolve_collision(old, True, NOW + 20) is None
    assert tried(b, old) is True and tried(b, new) is False
    assert b.collision_to_test() is None


def test_tried_collision_evicts_the_old_entry_when_it_is_silent() -> None:
    b, old, new = collided()
    assert b.resolve_collision(old, False, NOW + 20) == new
    assert tried(b, new) is True and tried(b, old) is False  # back in new, not forgotten
    assert b.counts() == (1, 1)
    assert b.collision_to_test() is None


def test_terrible_entry_loses_its_new_slot() -> None:
    b = book(new_buckets=1, tried_buckets=1, bucket_size=1)  # one new slot for all
    first, second, third = addr(1), addr(2), addr(3)
    assert b.add(first, source(1), NOW)
    assert not b.add(second, source(2), NOW)  # a healthy entry keeps its slot
    assert first in b and second not in b
    for _ in range(RETRIES):
        b.attempt(first, NOW)
    assert not b.add(second, source(2), NOW + 30)  # tried a moment ago: not yet terrible
    assert b.add(second, source(2), NOW + 61)
    assert second in b and first not in b and len(b) == 1
    assert b.sample(10, NOW + 61) == [second]
    assert b.add(third, source(3), NOW + 61 + HORIZON_S + 1)  # `second` went unseen too long
    assert list(b.sample(10, NOW + 61 + HORIZON_S + 1)) == [third]


def test_entry_seen_in_the_future_is_terrible() -> None:
    b = book(new_buckets=1, tried_buckets=1, bucket_size=1)
    assert b.add(addr(1), source(1), NOW, last_seen=NOW + DAY)
    assert b.sample(10, NOW) == []  # terrible entries are never shared
    assert b.add(addr(2), source(2), NOW)
    assert addr(1) not in b


def test_sample_is_random_distinct_and_capped() -> None:
    b = book()
    for i in range(1200):
        b.add(addr(i), source(i % 40), NOW)
    for i in range(1200, 1210):
        b.add(addr(i), source(1), NOW, last_seen=NOW + DAY)  # terrible
    total = len(b)
    assert total > MAX_SAMPLE
    big = b.sample(5000, NOW)
    assert len(big) == MAX_SAMPLE and len(set(big)) == MAX_SAMPLE
    assert not any(a in big for a in (addr(i) for i in range(1200, 1210)))
    small = b.sample(10, NOW)
    assert len(set(small)) == 10 and small != b.sample(10, NOW)
    assert b.sample(0, NOW) == [] and b.sample(-1, NOW) == []


@dataclass
class Eclipse:
    book: AddrMan
    fakes: set[NetAddr]
    honest: set[NetAddr]


ATTACKER = "66.77.0.0/16"


@pytest.fixture(scope="module")
def eclipse() -> Eclipse:
    """10,000 fakes (from many /16s) sent by one source /16, then 20 honest
    addresses from each of 50 other source groups."""
    b = AddrMan(KEY, rng=random.Random(11))
    fakes = {addr(i) for i in range(10_000)}
    for i, a in enumerate(sorted(fakes, key=str)):
        b.add(a, f"66.77.{i % 256}.{1 + i % 250}", NOW)  # any host of the attacker's /16
    honest = {NetAddr(f"{170 + g}.{40 + j}.3.4", 8333) for g in range(50) for j in range(20)}
    for a in sorted(honest, key=str):
        b.add(a, source(int(a.host.split(".")[0]) - 170), NOW)
    return Eclipse(b, fakes, honest)


def new_buckets_of(b: AddrMan, addrs: set[NetAddr]) -> set[int]:
    buckets: set[int] = set()
    for a in addrs:
        position = b.find(a)
        if position is not None:
            buckets.update(bucket for bucket, _ in position.slots)
    return buckets


def test_one_source_group_fills_at_most_64_new_buckets(eclipse: Eclipse) -> None:
    b = eclipse.book
    fake_buckets = new_buckets_of(b, eclipse.fakes)
    assert len(fake_buckets) <= 64  # Bitcoin's ADDRMAN_NEW_BUCKETS_PER_SOURCE_GROUP
    assert fake_buckets <= {b.new_bucket(a, ATTACKER) for a in eclipse.fakes}
    stored = sum(a in b for a in eclipse.fakes)
    assert stored <= 64 * 64  # 64 buckets of 64 slots, of 10,000 sent


def test_honest_addresses_are_still_selected(eclipse: Eclipse) -> None:
    b = eclipse.book
    stored_fakes = sum(a in b for a in eclipse.fakes)
    stored_honest = sum(a in b for a in eclipse.honest)
    assert stored_fakes / (stored_fakes + stored_honest) > 0.75  # by raw count: mostly fake
    # a uniform bucket is fake at most this often (less where buckets are shared)
    bound = len(new_buckets_of(b, eclipse.fakes)) / len(b.new_buckets_used())
    draws = [b.select(NOW) for _ in range(2000)]
    fakes = sum(d in eclipse.fakes for d in draws)
    honest = sum(d in eclipse.honest for d in draws)
    assert fakes + honest == len(draws)
    fake_share, honest_share = fakes / len(draws), honest / len(draws)
    assert fake_share <= bound + 0.03
    assert fake_share < 0.2 and honest_share > 0.8


def test_tried_needs_successful_connections() -> None:
    b = book()
    one_group = [NetAddr(f"66.77.{i // 250}.{1 + i % 250}", 8333) for i in range(400)]
    for i, a in enumerate(one_group):
        b.add(a, source(i % 200), NOW)
    for a in one_group:
        for _ in range(5):
            b.attempt(a, NOW)
    assert not b.good(addr(1), NOW) and addr(1) not in b  # never heard of: stays out
    assert b.counts()[1] == 0  # failures alone never reach tried
    for a in one_group:
        b.good(a, NOW)
    assert b.counts()[1] > 0 and len(b.tried_buckets_used()) <= 8


def populated() -> AddrMan:
    b = book()
    for i in range(60):
        b.add(addr(i), source(i % 6), NOW - i)
    for g in range(40):
        b.add(addr(1), source(100 + g), NOW + g)  # several references
    for i in range(0, 60, 3):
        b.good(addr(i), NOW + 5)
    for i in range(1, 60, 5):
        b.attempt(addr(i), NOW + 6)
    b.add(NetAddr("2a00:1450::1", 443), source(2), NOW)
    return b


def test_encode_decode_round_trip() -> None:
    b = populated()
    data = b.encode()
    again = AddrMan.decode(data, key_check=KEY)
    assert again.encode() == data
    assert again.counts() == b.counts() and len(again) == len(b)
    for i in range(60):
        assert again.find(addr(i)) == b.find(addr(i))
    position = again.find(addr(1))
    assert position is not None and len(position.slots) > 1
    assert again.new_buckets_used() == b.new_buckets_used()
    assert again.tried_buckets_used() == b.tried_buckets_used()


def test_decode_checks_key_and_locality() -> None:
    with pytest.raises(AddrManError) as err:
        AddrMan.decode(populated().encode(), key_check=bytes(32))
    assert err.value.code == "addrman-wrong-key"
    local = AddrMan(KEY, allow_local=True)
    local.add(NetAddr("127.0.0.1", 9000), "127.0.0.1", NOW)
    assert len(AddrMan.decode(local.encode(), allow_local=True)) == 1
    with pytest.raises(AddrManError) as err:
        AddrMan.decode(local.encode())
    assert err.value.code == "addrman-bad-address"


def tamper(change: str) -> bytes:
    stored = _StoredAddrMan.decode(populated().encode())
    entries = list(stored.entries)
    newcomer = next(i for i, e in enumerate(entries) if e.tried is None)
    veteran = next(i for i, e in enumerate(entries) if e.tried is not None)
    e = entries[newcomer]
    if change == "version":
        stored = dataclasses.replace(stored, version=2)
    elif change == "shape":
        stored = dataclasses.replace(stored, bucket_size=0)
    elif change == "duplicate":
        entries.append(e)
    elif change == "new-slot":
        ref = dataclasses.replace(e.new_refs[0], position=(e.new_refs[0].position + 1) % 64)
        entries[newcomer] = dataclasses.replace(e, new_refs=(ref, *e.new_refs[1:]))
    elif change == "source":
        ref = dataclasses.replace(e.new_refs[0], source_group="1.2.0.0/16")
        entries[newcomer] = dataclasses.replace(e, new_refs=(ref, *e.new_refs[1:]))
    elif change == "both-tables":
        entries[veteran] = dataclasses.replace(entries[veteran], new_refs=e.new_refs)
    elif change == "no-table":
        entries[newcomer] = dataclasses.replace(e, new_refs=())
    elif change == "host":
        entries[newcomer] = dataclasses.replace(e, host=f"::ffff:{e.host}")
    elif change == "group":
        entries[newcomer] = dataclasses.replace(e, source_group="1.2.3.0/24")
    return dataclasses.replace(stored, entries=tuple(entries)).encode()


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("version", "addrman-bad-version"),
        ("shape", "addrman-bad-shape"),
        ("duplicate", "addrman-duplicate"),
        ("new-slot", "addrman-bad-placement"),
        ("source", "addrman-bad-placement"),
        ("both-tables", "addrman-bad-placement"),
        ("no-table", "addrman-bad-placement"),
        ("host", "addrman-bad-address"),
        ("group", "addrman-bad-address"),
    ],
)
def test_decode_rejects_inconsistent_books(change: str, code: str) -> None:
    with pytest.raises(AddrManError) as err:
        AddrMan.decode(tamper(change))
    assert err.value.code == code
    assert isinstance(err.value, BcaiError)


def test_decode_rejects_two_entries_in_one_slot() -> None:
    b = book(new_buckets=1, tried_buckets=1, bucket_size=1)
    b.add(addr(1), source(1), NOW)
    stored = _StoredAddrMan.decode(b.encode())
    (only,) = stored.entries
    twin = dataclasses.replace(only, host=addr(2).host)  # every address has slot (0, 0)
    with pytest.raises(AddrManError) as err:
        AddrMan.decode(dataclasses.replace(stored, entries=(only, twin)).encode())
    assert err.value.code == "addrman-slot-taken"


def test_decode_rejects_truncation_and_trailing_bytes() -> None:
    data = populated().encode()
    for bad in (data[:-1], data + b"\0", b"", "not bytes"):
        with pytest.raises(AddrManError) as err:
            AddrMan.decode(bad)  # type: ignore[arg-type]
        assert err.value.code == "addrman-malformed"


SMALL = AddrMan(KEY, new_buckets=4, tried_buckets=2, bucket_size=4, rng=random.Random(3))
for _i in range(12):
    SMALL.add(addr(_i), source(_i % 3), NOW)
SMALL.good(addr(0), NOW)
SMALL_DATA = SMALL.encode()


def decode_or_reason(data: bytes) -> AddrMan | None:
    try:
        book = AddrMan.decode(data)
    except AddrManError:
        return None
    assert AddrMan.decode(book.encode()).encode() == book.encode()
    return book


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_decode_fuzz_raises_only_addrman_error(data: bytes) -> None:
    decode_or_reason(data)
    decode_or_reason(SMALL_DATA[:60] + data)  # past the header, into the entries


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, len(SMALL_DATA) - 1), st.integers(0, 255)),
        min_size=1,
        max_size=4,
    )
)
def test_decode_fuzz_mutations_raise_only_addrman_error(edits: list[tuple[int, int]]) -> None:
    data = bytearray(SMALL_DATA)
    for pos, byte in edits:
        data[pos] = byte
    decode_or_reason(bytes(data))
