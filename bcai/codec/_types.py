"""Field codecs: fixed-width big-endian integers, booleans, fixed and
length-prefixed bytes, UTF-8 text, lists, options and tagged variants.

Every length prefix is a big-endian u32 checked against a declared maximum
*before* anything is allocated, so a peer's bytes never drive an allocation
beyond the declared limits.
"""

from __future__ import annotations

import math
import struct
from abc import ABC, abstractmethod
from typing import Any, Generic, TypeVar

from bcai.codec._errors import DecodeError, EncodeError

T = TypeVar("T")

LENGTH_BYTES = 4
MAX_LENGTH = 2**32 - 1


class Codec(ABC, Generic[T]):
    """Encodes values of one type and decodes them strictly."""

    @abstractmethod
    def encode_into(self, value: T, out: bytearray) -> None:
        """Appends the canonical encoding of `value` to `out`."""

    @abstractmethod
    def decode_from(self, data: bytes, pos: int) -> tuple[T, int]:
        """Decodes a value at `pos`; returns it and the position after it."""

    def encode(self, value: T) -> bytes:
        out = bytearray()
        self.encode_into(value, out)
        return bytes(out)

    def decode(self, data: bytes) -> T:
        """Decodes exactly one value: trailing bytes are an error."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise DecodeError("codec-not-bytes", f"expected bytes, got {type(data).__name__}")
        data = bytes(data)
        value, end = self.decode_from(data, 0)
        if end != len(data):
            raise DecodeError("codec-trailing-bytes", f"{len(data) - end} bytes after the value")
        return value


def take(data: bytes, pos: int, n: int, what: str) -> bytes:
    """The next `n` bytes, or DecodeError(codec-truncated)."""
    end = pos + n
    if end > len(data):
        raise DecodeError(
            "codec-truncated", f"{what}: need {n} bytes at offset {pos}, have {len(data) - pos}"
        )
    return data[pos:end]


class UInt(Codec[int]):
    """Unsigned big-endian integer of `bits` bits, optionally capped at `max`."""

    def __init__(self, bits: int, max: int | None = None) -> None:
        if bits % 8 or not 8 <= bits <= 512:
            raise ValueError(f"UInt bits must be a multiple of 8 in 8..512, got {bits}")
        self.bits = bits
        self.size = bits // 8
        self.max = (1 << bits) - 1 if max is None else max

    def encode_into(self, value: int, out: bytearray) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise EncodeError("codec-bad-type", f"u{self.bits}: expected int, got {value!r}")
        if not 0 <= value <= self.max:
            raise EncodeError("codec-out-of-range", f"u{self.bits}: {value} not in 0..{self.max}")
        out += value.to_bytes(self.size, "big")

    def decode_from(self, data: bytes, pos: int) -> tuple[int, int]:
        value = int.from_bytes(take(data, pos, self.size, f"u{self.bits}"), "big")
        if value > self.max:
            raise DecodeError("codec-out-of-range", f"u{self.bits}: {value} > {self.max}")
        return value, pos + self.size

    def __repr__(self) -> str:
        return f"UInt({self.bits})"


U8 = UInt(8)
U16 = UInt(16)
U32 = UInt(32)
U64 = UInt(64)
U128 = UInt(128)


class Int(Codec[int]):
    """Signed big-endian two's-complement integer of `bits` bits."""

    def __init__(self, bits: int) -> None:
        if bits % 8 or not 8 <= bits <= 64:
            raise ValueError(f"Int bits must be a multiple of 8 in 8..64, got {bits}")
        self.bits = bits
        self.size = bits // 8
        self.lo, self.hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    def encode_into(self, value: int, out: bytearray) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise EncodeError("codec-bad-type", f"i{self.bits}: expected int, got {value!r}")
        if not self.lo <= value <= self.hi:
            raise EncodeError(
                "codec-out-of-range", f"i{self.bits}: {value} not in {self.lo}..{self.hi}"
            )
        out += value.to_bytes(self.size, "big", signed=True)

    def decode_from(self, data: bytes, pos: int) -> tuple[int, int]:
        raw = take(data, pos, self.size, f"i{self.bits}")
        return int.from_bytes(raw, "big", signed=True), pos + self.size


I32 = Int(32)
I64 = Int(64)


class F64Codec(Codec[float]):
    """An IEEE 754 binary64, big-endian. NaN has many encodings, so none is
    accepted (each value keeps one encoding); infinities and -0.0 are values."""

    def encode_into(self, value: float, out: bytearray) -> None:
        if not isinstance(value, float | int) or isinstance(value, bool):
            raise EncodeError("codec-bad-type", f"f64: expected float, got {value!r}")
        if math.isnan(value):
            raise EncodeError("codec-out-of-range", "f64: NaN has no canonical encoding")
        out += struct.pack(">d", float(value))

    def decode_from(self, data: bytes, pos: int) -> tuple[float, int]:
        (value,) = struct.unpack(">d", take(data, pos, 8, "f64"))
        if math.isnan(value):
            raise DecodeError("codec-out-of-range", "f64: NaN is not allowed")
        return float(value), pos + 8


F64 = F64Codec()


class BoolCodec(Codec[bool]):
    """One byte, 0 or 1; any other byte is rejected."""

    def encode_into(self, value: bool, out: bytearray) -> None:
        if not isinstance(value, bool):
            raise EncodeError("codec-bad-type", f"bool: expected bool, got {value!r}")
        out.append(1 if value else 0)

    def decode_from(self, data: bytes, pos: int) -> tuple[bool, int]:
        byte = take(data, pos, 1, "bool")[0]
        if byte > 1:
            raise DecodeError("codec-bad-bool", f"bool byte is {byte}, must be 0 or 1")
        return byte == 1, pos + 1


Bool = BoolCodec()


def _check_bytes(value: object, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise EncodeError("codec-bad-type", f"{what}: expected bytes, got {type(value).__name__}")
    return value


class FixedBytes(Codec[bytes]):
    """Exactly `size` bytes, no prefix."""

    def __init__(self, size: int) -> None:
        self.size = size

    def encode_into(self, value: bytes, out: bytearray) -> None:
        value = _check_bytes(value, f"bytes{self.size}")
        if len(value) != self.size:
            raise EncodeError("codec-out-of-range", f"bytes{self.size}: got {len(value)} bytes")
        out += value

    def decode_from(self, data: bytes, pos: int) -> tuple[bytes, int]:
        return take(data, pos, self.size, f"bytes{self.size}"), pos + self.size

    def __repr__(self) -> str:
        return f"FixedBytes({self.size})"


def _decode_length(data: bytes, pos: int, max_len: int, what: str) -> tuple[int, int]:
    n = int.from_bytes(take(data, pos, LENGTH_BYTES, f"{what} length"), "big")
    if n > max_len:
        raise DecodeError("codec-oversize", f"{what}: length {n} exceeds the maximum {max_len}")
    return n, pos + LENGTH_BYTES


def _encode_length(n: int, max_len: int, what: str, out: bytearray) -> None:
    if n > max_len:
        raise EncodeError("codec-oversize", f"{what}: length {n} exceeds the maximum {max_len}")
    out += n.to_bytes(LENGTH_BYTES, "big")


class Bytes(Codec[bytes]):
    """A u32 length, then that many bytes (at most `max_len`)."""

    def __init__(self, max_len: int) -> None:
        if not 0 <= max_len <= MAX_LENGTH:
            raise ValueError(f"max_len must be in 0..{MAX_LENGTH}")
        self.max_len = max_len

    def encode_into(self, value: bytes, out: bytearray) -> None:
        value = _check_bytes(value, "bytes")
        _encode_length(len(value), self.max_len, "bytes", out)
        out += value

    def decode_from(self, data: bytes, pos: int) -> tuple[bytes, int]:
        n, pos = _decode_length(data, pos, self.max_len, "bytes")
        return take(data, pos, n, "bytes"), pos + n

    def __repr__(self) -> str:
        return f"Bytes(max_len={self.max_len})"


class Text(Codec[str]):
    """UTF-8 text: a u32 byte length (at most `max_len`), then the bytes."""

    def __init__(self, max_len: int) -> None:
        self.inner = Bytes(max_len)

    def encode_into(self, value: str, out: bytearray) -> None:
        if not isinstance(value, str):
            raise EncodeError("codec-bad-type", f"text: expected str, got {type(value).__name__}")
        try:
            raw = value.encode("utf-8")
        except UnicodeEncodeError as err:
            raise EncodeError("codec-bad-type", f"text: not encodable as UTF-8: {err}") from err
        self.inner.encode_into(raw, out)

    def decode_from(self, data: bytes, pos: int) -> tuple[str, int]:
        raw, pos = self.inner.decode_from(data, pos)
        try:
            return raw.decode("utf-8"), pos
        except UnicodeDecodeError as err:
            raise DecodeError("codec-bad-utf8", f"text: {err}") from err


class ListOf(Codec[tuple[T, ...]]):
    """A u32 count (at most `max_len`), then the items. Decodes to a tuple."""

    def __init__(self, item: Codec[T], max_len: int) -> None:
        self.item = item
        self.max_len = max_len

    def encode_into(self, value: tuple[T, ...], out: bytearray) -> None:
        if not isinstance(value, tuple | list):
            raise EncodeError(
                "codec-bad-type", f"list: expected a tuple, got {type(value).__name__}"
            )
        _encode_length(len(value), self.max_len, "list", out)
        for v in value:
            self.item.encode_into(v, out)

    def decode_from(self, data: bytes, pos: int) -> tuple[tuple[T, ...], int]:
        n, pos = _decode_length(data, pos, self.max_len, "list")
        items = []
        for _ in range(n):
            v, pos = self.item.decode_from(data, pos)
            items.append(v)
        return tuple(items), pos


class Option(Codec[T | None]):
    """A tag byte (0 = absent, 1 = present), then the value if present."""

    def __init__(self, item: Codec[T]) -> None:
        self.item = item

    def encode_into(self, value: T | None, out: bytearray) -> None:
        if value is None:
            out.append(0)
        else:
            out.append(1)
            self.item.encode_into(value, out)

    def decode_from(self, data: bytes, pos: int) -> tuple[T | None, int]:
        tag = take(data, pos, 1, "option tag")[0]
        if tag == 0:
            return None, pos + 1
        if tag != 1:
            raise DecodeError("codec-bad-option-tag", f"option tag is {tag}, must be 0 or 1")
        return self.item.decode_from(data, pos + 1)


class Variant(Codec[Any]):
    """A u8 tag naming one of several record types, then that record.

    `variants` maps each tag to a record class; encoding picks the tag from
    the value's exact class.
    """

    def __init__(self, variants: dict[int, Any]) -> None:
        if not variants or any(not 0 <= t <= 255 for t in variants):
            raise ValueError("variant tags must be in 0..255")
        self.by_tag = dict(variants)
        self.by_type = {cls: tag for tag, cls in variants.items()}
        if len(self.by_type) != len(self.by_tag):
            raise ValueError("each variant class may have one tag only")

    def encode_into(self, value: Any, out: bytearray) -> None:
        tag = self.by_type.get(type(value))
        if tag is None:
            names = ", ".join(c.__name__ for c in self.by_type)
            raise EncodeError(
                "codec-bad-type", f"variant: {type(value).__name__} is not one of {names}"
            )
        out.append(tag)
        value.encode_into(out)

    def decode_from(self, data: bytes, pos: int) -> tuple[Any, int]:
        tag = take(data, pos, 1, "variant tag")[0]
        cls = self.by_tag.get(tag)
        if cls is None:
            raise DecodeError("codec-unknown-variant", f"variant tag {tag} is not defined")
        decoded: tuple[Any, int] = cls.decode_from(data, pos + 1)
        return decoded
