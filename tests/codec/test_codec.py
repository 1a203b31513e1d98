"""The canonical codec: round trips (hypothesis), the strict decoder's reason
codes, and fuzzing: random or mutated bytes never raise anything but
DecodeError."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bcai import codec
from bcai.codec import DecodeError, EncodeError
from bcai.crypto import blake3


@dataclass(frozen=True, slots=True)
class Inner(codec.Record):
    DOMAIN: ClassVar[bytes] = b"test/inner"
    flag: bool = codec.field(codec.Bool)
    blob: bytes = codec.field(codec.Bytes(40))


@dataclass(frozen=True, slots=True)
class Other(codec.Record):
    DOMAIN: ClassVar[bytes] = b"test/other"
    n: int = codec.field(codec.U16)


@dataclass(frozen=True, slots=True)
class Outer(codec.Record):
    DOMAIN: ClassVar[bytes] = b"test/outer"
    MAX_SIZE: ClassVar[int] = 4096
    version: int = codec.field(codec.U8)
    height: int = codec.field(codec.U64)
    amount: int = codec.field(codec.U128)
    small: int = codec.field(codec.UInt(32, max=1000))
    parent: bytes = codec.field(codec.FixedBytes(32))
    memo: str = codec.field(codec.Text(20))
    items: tuple[Inner, ...] = codec.field(codec.ListOf(codec.RecordCodec(Inner), 4))
    maybe: int | None = codec.field(codec.Option(codec.U32))
    payload: Any = codec.field(codec.Variant({1: Inner, 7: Other}))


inners = st.builds(Inner, flag=st.booleans(), blob=st.binary(max_size=40))
outers = st.builds(
    Outer,
    version=st.integers(0, 255),
    height=st.integers(0, 2**64 - 1),
    amount=st.integers(0, 2**128 - 1),
    small=st.integers(0, 1000),
    parent=st.binary(min_size=32, max_size=32),
    memo=st.text(max_size=5),
    items=st.lists(inners, max_size=4).map(tuple),
    maybe=st.none() | st.integers(0, 2**32 - 1),
    payload=inners | st.builds(Other, n=st.integers(0, 65535)),
)


@given(outers)
def test_round_trip(value: Outer) -> None:
    blob = value.encode()
    assert Outer.decode(blob) == value
    assert Outer.decode(blob).encode() == blob  # one encoding per value
    assert value.object_id() == Outer.decode(blob).object_id()


def test_layout_is_fixed_and_big_endian() -> None:
    v = Inner(flag=True, blob=b"ab")
    assert v.encode() == b"\x01" + b"\x00\x00\x00\x02" + b"ab"
    assert codec.U64.encode(1) == b"\x00" * 7 + b"\x01"
    assert codec.Option(codec.U8).encode(None) == b"\x00"
    assert codec.ListOf(codec.U16, 3).encode((1, 2)) == b"\x00\x00\x00\x02\x00\x01\x00\x02"


def test_object_id_is_domain_separated() -> None:
    v = Other(n=5)
    assert v.object_id() == blake3(b"test/other" + v.encode())
    assert v.object_id() != blake3(b"test/inner" + v.encode())


SAMPLE = Outer(
    version=1,
    height=9,
    amount=10,
    small=5,
    parent=bytes(32),
    memo="hé",
    items=(Inner(flag=False, blob=b"x"),),
    maybe=3,
    payload=Other(n=2),
)
BLOB = SAMPLE.encode()


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (BLOB + b"\x00", "codec-trailing-bytes"),
        (BLOB[:-1], "codec-truncated"),
        (b"", "codec-truncated"),
        (b"\x00" * 5000, "codec-oversize"),
    ],
)
def test_strict_decoder_codes(data: bytes, code: str) -> None:
    with pytest.raises(DecodeError) as info:
        Outer.decode(data)
    assert info.value.code == code


@pytest.mark.parametrize(
    ("codec_", "data", "code"),
    [
        (codec.Bool, b"\x02", "codec-bad-bool"),
        (codec.Option(codec.U8), b"\x02\x00", "codec-bad-option-tag"),
        (codec.Variant({1: Inner}), b"\x09", "codec-unknown-variant"),
        (codec.Text(10), b"\x00\x00\x00\x02\xc3\x28", "codec-bad-utf8"),
        (codec.Bytes(3), b"\x00\x00\x00\x04abcd", "codec-oversize"),
        (codec.ListOf(codec.U8, 2), b"\xff\xff\xff\xff", "codec-oversize"),
        (codec.UInt(32, max=1000), (1001).to_bytes(4, "big"), "codec-out-of-range"),
        (codec.FixedBytes(4), b"abc", "codec-truncated"),
        (codec.U16, b"\x00\x01\x02", "codec-trailing-bytes"),
    ],
)
def test_field_decoder_codes(codec_: codec.Codec[Any], data: bytes, code: str) -> None:
    with pytest.raises(DecodeError) as info:
        codec_.decode(data)
    assert info.value.code == code


def test_error_names_the_field() -> None:
    broken = bytearray(BLOB)
    broken[1 + 8 + 16 + 4 + 32 + 4 + 3] = 0xFF  # the items count
    with pytest.raises(DecodeError, match=r"Outer\.items") as info:
        Outer.decode(bytes(broken))
    assert info.value.code == "codec-oversize"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ({"version": 256}, "codec-out-of-range"),
        ({"version": -1}, "codec-out-of-range"),
        ({"version": True}, "codec-bad-type"),
        ({"small": 1001}, "codec-out-of-range"),
        ({"parent": b"short"}, "codec-out-of-range"),
        ({"parent": "x" * 32}, "codec-bad-type"),
        ({"memo": "x" * 21}, "codec-oversize"),
        ({"memo": "\ud800"}, "codec-bad-type"),
        ({"items": (SAMPLE.items[0],) * 5}, "codec-oversize"),
        ({"items": (Other(n=1),)}, "codec-bad-type"),
        ({"payload": SAMPLE}, "codec-bad-type"),
    ],
)
def test_encoder_refuses_bad_values(value: dict[str, Any], code: str) -> None:
    bad = dataclasses.replace(SAMPLE, **value)
    with pytest.raises(EncodeError) as info:
        bad.encode()
    assert info.value.code == code


def test_decode_rejects_non_bytes() -> None:
    with pytest.raises(DecodeError) as info:
        Outer.decode("text")  # type: ignore[arg-type]
    assert info.value.code == "codec-not-bytes"


def test_bad_declarations_fail_loudly() -> None:
    with pytest.raises(ValueError):
        codec.UInt(12)
    with pytest.raises(ValueError):
        codec.Variant({300: Inner})

    @dataclass(frozen=True)
    class NoCodec(codec.Record):
        x: int = 0

    with pytest.raises(TypeError, match="has no codec"):
        NoCodec().encode()


@settings(max_examples=400)
@given(st.binary(max_size=600))
def test_fuzz_random_bytes_only_decode_error(data: bytes) -> None:
    try:
        value = Outer.decode(data)
    except DecodeError:
        return
    assert value.encode() == data  # anything accepted is canonical


@settings(max_examples=400)
@given(outers, st.data())
def test_fuzz_mutations_only_decode_error(value: Outer, data: st.DataObject) -> None:
    blob = bytearray(value.encode())
    op = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
    pos = data.draw(st.integers(0, max(len(blob) - 1, 0)))
    if op == "flip" and blob:
        blob[pos] ^= data.draw(st.integers(1, 255))
    elif op == "insert":
        blob[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
    elif op == "delete" and blob:
        del blob[pos]
    else:
        blob = blob[:pos]
    try:
        decoded = Outer.decode(bytes(blob))
    except DecodeError:
        return
    assert decoded.encode() == bytes(blob)
