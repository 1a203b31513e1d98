"""The address book on disk: what `AddrMan.encode` writes and `AddrMan.decode`
loads (see `bcai.net._addrman`). The key and every placement are stored, and
each placement is checked against the key on load, so a tampered or foreign
file is refused rather than trusted; pending collisions are not kept.
"""

from __future__ import annotations

import ipaddress
import math
import random
import struct
from dataclasses import dataclass
from typing import ClassVar

from bcai import codec
from bcai.net._addrman import (
    FORMAT_VERSION,
    KEY_SIZE,
    MAX_STORED_ENTRIES,
    NEW_BUCKETS_PER_ADDRESS,
    AddrMan,
    AddrManError,
    NetAddr,
    _check_shape,
    _Entry,
)

_MAX_TEXT = 64


def _check_group(text: str) -> str:
    """`text` if it is a canonical /16 (IPv4) or /32 (IPv6) group, else ValueError."""
    net = ipaddress.ip_network(text)
    if net.prefixlen != (16 if net.version == 4 else 32) or str(net) != text:
        raise ValueError(f"{text!r} is not a canonical network group")
    return text


class _Seconds(codec.Codec[float]):
    """A time in seconds: big-endian IEEE-754 double, finite only (so stored
    times round-trip exactly)."""

    _FMT = struct.Struct(">d")

    def encode_into(self, value: float, out: bytearray) -> None:
        if not isinstance(value, float) or not math.isfinite(value):
            raise codec.EncodeError("codec-out-of-range", f"seconds: {value!r} is not finite")
        out += self._FMT.pack(value)

    def decode_from(self, data: bytes, pos: int) -> tuple[float, int]:
        if pos + 8 > len(data):
            raise codec.DecodeError("codec-truncated", f"seconds: need 8 bytes at offset {pos}")
        (value,) = self._FMT.unpack_from(data, pos)
        if not math.isfinite(value):
            raise codec.DecodeError("codec-out-of-range", f"seconds: {value!r} is not finite")
        return value, pos + 8


_SECONDS = _Seconds()
_TEXT = codec.Text(_MAX_TEXT)


@dataclass(frozen=True, slots=True)
class _TriedSlot(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/addrman/tried-slot"
    bucket: int = codec.field(codec.U32)
    position: int = codec.field(codec.U32)


@dataclass(frozen=True, slots=True)
class _NewRef(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/addrman/new-ref"
    source_group: str = codec.field(_TEXT)
    bucket: int = codec.field(codec.U32)
    position: int = codec.field(codec.U32)


@dataclass(frozen=True, slots=True)
class _StoredEntry(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/addrman/entry"
    host: str = codec.field(_TEXT)
    port: int = codec.field(codec.U16)
    source_group: str = codec.field(_TEXT)
    last_seen: float = codec.field(_SECONDS)
    last_try: float | None = codec.field(codec.Option(_SECONDS))
    last_success: float | None = codec.field(codec.Option(_SECONDS))
    attempts: int = codec.field(codec.U32)
    tried: _TriedSlot | None = codec.field(codec.Option(codec.RecordCodec(_TriedSlot)))
    new_refs: tuple[_NewRef, ...] = codec.field(
        codec.ListOf(codec.RecordCodec(_NewRef), NEW_BUCKETS_PER_ADDRESS)
    )


@dataclass(frozen=True, slots=True)
class _StoredAddrMan(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/addrman"
    version: int = codec.field(codec.U16)
    key: bytes = codec.field(codec.FixedBytes(KEY_SIZE))
    new_buckets: int = codec.field(codec.U32)
    tried_buckets: int = codec.field(codec.U32)
    bucket_size: int = codec.field(codec.U32)
    entries: tuple[_StoredEntry, ...] = codec.field(
        codec.ListOf(codec.RecordCodec(_StoredEntry), MAX_STORED_ENTRIES)
    )


def encode_addrman(book: AddrMan) -> bytes:
    """`book` as bytes: the whole book, key and placements included."""
    entries = []
    for addr, e in book._entries.items():
        tried = None
        if e.tried:
            bucket = book.tried_bucket(addr)
            tried = _TriedSlot(bucket, book.position(addr, bucket, tried=True))
        refs = tuple(
            _NewRef(group, b, book.position(addr, b, tried=False))
            for b, group in e.new_refs.items()
        )
        entries.append(
            _StoredEntry(
                host=addr.host,
                port=addr.port,
                source_group=e.source_group,
                last_seen=e.last_seen,
                last_try=e.last_try,
                last_success=e.last_success,
                attempts=e.attempts,
                tried=tried,
                new_refs=refs,
            )
        )
    return _StoredAddrMan(
        version=FORMAT_VERSION,
        key=book._key,
        new_buckets=book._new.buckets,
        tried_buckets=book._tried.buckets,
        bucket_size=book._new.size,
        entries=tuple(entries),
    ).encode()


def decode_addrman(
    cls: type[AddrMan],
    data: bytes,
    *,
    key_check: bytes | None,
    rng: random.Random | None,
    allow_local: bool,
) -> AddrMan:
    """The book `encode_addrman` wrote, as a `cls`; see `AddrMan.decode`."""
    try:
        stored = _StoredAddrMan.decode(data)
    except codec.DecodeError as err:
        raise AddrManError("addrman-malformed", f"address book: {err.message}") from err
    if stored.version != FORMAT_VERSION:
        raise AddrManError(
            "addrman-bad-version", f"format {stored.version}, expected {FORMAT_VERSION}"
        )
    if key_check is not None and stored.key != key_check:
        raise AddrManError("addrman-wrong-key", "the stored key is not the expected one")
    try:
        _check_shape(stored.new_buckets, stored.tried_buckets, stored.bucket_size)
    except ValueError as err:
        raise AddrManError("addrman-bad-shape", str(err)) from err
    book = cls(
        stored.key,
        new_buckets=stored.new_buckets,
        tried_buckets=stored.tried_buckets,
        bucket_size=stored.bucket_size,
        rng=rng,
        allow_local=allow_local,
    )
    for index, item in enumerate(stored.entries):
        _restore(book, index, item)
    return book


def _restore(book: AddrMan, index: int, item: _StoredEntry) -> None:
    where = f"entry {index}"
    try:
        addr = NetAddr(item.host, item.port)
        _check_group(item.source_group)
        for ref in item.new_refs:
            _check_group(ref.source_group)
    except ValueError as err:
        raise AddrManError("addrman-bad-address", f"{where}: {err}") from err
    if addr.host != item.host or not book.is_acceptable(addr):
        raise AddrManError("addrman-bad-address", f"{where}: {item.host!r} not accepted")
    if addr in book._entries:
        raise AddrManError("addrman-duplicate", f"{where}: {addr} stored twice")
    entry = _Entry(
        addr=addr,
        source_group=item.source_group,
        last_seen=item.last_seen,
        last_try=item.last_try,
        last_success=item.last_success,
        attempts=item.attempts,
    )
    if item.tried is not None:
        _restore_tried(book, where, entry, item.tried, item.new_refs)
    else:
        _restore_new(book, where, entry, item.new_refs)
    book._entries[addr] = entry


def _restore_tried(
    book: AddrMan, where: str, entry: _Entry, slot: _TriedSlot, refs: tuple[_NewRef, ...]
) -> None:
    bucket = book.tried_bucket(entry.addr)
    pos = book.position(entry.addr, bucket, tried=True)
    if refs or (slot.bucket, slot.position) != (bucket, pos):
        raise AddrManError("addrman-bad-placement", f"{where}: not its tried slot")
    if book._tried.get(bucket, pos) is not None:
        raise AddrManError("addrman-slot-taken", f"{where}: tried slot already held")
    entry.tried = True
    book._tried.put(bucket, pos, entry.addr)


def _restore_new(book: AddrMan, where: str, entry: _Entry, refs: tuple[_NewRef, ...]) -> None:
    placed: dict[int, tuple[int, str]] = {}
    for ref in refs:
        bucket = book.new_bucket(entry.addr, ref.source_group)
        pos = book.position(entry.addr, bucket, tried=False)
        if (ref.bucket, ref.position) != (bucket, pos) or bucket in placed:
            raise AddrManError("addrman-bad-placement", f"{where}: not its new slot")
        if book._new.get(bucket, pos) is not None:
            raise AddrManError("addrman-slot-taken", f"{where}: new slot already held")
        placed[bucket] = (pos, ref.source_group)
    if not placed:
        raise AddrManError("addrman-bad-placement", f"{where}: in neither table")
    for bucket, (pos, group) in placed.items():
        entry.new_refs[bucket] = group
        book._new.put(bucket, pos, entry.addr)
