"""Declarative record types: a frozen dataclass whose fields name their codecs.

    @dataclass(frozen=True, slots=True)
    class Transfer(Record):
        DOMAIN: ClassVar[bytes] = b"bcai/tx/transfer"
        to: bytes = field(FixedBytes(20))
        amount: int = field(U64)

The encoding is the fields' encodings in declaration order, nothing else: no
field names, no padding, no version byte (version fields are declared like
any other). An object's id is BLAKE3-256(DOMAIN ‖ encoding).
"""

from __future__ import annotations

import dataclasses
import struct
from typing import Any, ClassVar, Self

import bcai_native
from bcai.codec._errors import DecodeError, EncodeError
from bcai.codec._types import Codec, FixedBytes, UInt

_STRUCT_INTS = {8: "B", 16: "H", 32: "I", 64: "Q"}


@dataclasses.dataclass(frozen=True, slots=True)
class _Run:
    """Consecutive fixed-size fields, packed with one struct call. `checks`
    holds (name, kind, limit): ("int", max) or ("bytes", size)."""

    fmt: struct.Struct
    names: tuple[str, ...]
    checks: tuple[tuple[str, str, int], ...]
    codecs: tuple[Codec[Any], ...]


def _struct_char(codec: Codec[Any]) -> str | None:
    if isinstance(codec, UInt) and codec.bits in _STRUCT_INTS:
        return _STRUCT_INTS[codec.bits]
    if isinstance(codec, FixedBytes):
        return f"{codec.size}s"
    return None


def _plan(fields: tuple[tuple[str, Codec[Any]], ...]) -> tuple[_Run | tuple[str, Codec[Any]], ...]:
    """Groups runs of fixed-size fields into struct steps (same bytes as the
    field codecs, much less Python per field)."""
    steps: list[_Run | tuple[str, Codec[Any]]] = []
    run: list[tuple[str, Codec[Any], str]] = []

    def flush() -> None:
        if len(run) >= 2:
            steps.append(
                _Run(
                    fmt=struct.Struct(">" + "".join(ch for _, _, ch in run)),
                    names=tuple(n for n, _, _ in run),
                    checks=tuple(
                        (n, "int", c.max) if isinstance(c, UInt) else (n, "bytes", c.size)  # type: ignore[attr-defined]
                        for n, c, _ in run
                    ),
                    codecs=tuple(c for _, c, _ in run),
                )
            )
        else:
            steps.extend((n, c) for n, c, _ in run)
        run.clear()

    for name, codec in fields:
        ch = _struct_char(codec)
        if ch is None:
            flush()
            steps.append((name, codec))
        else:
            run.append((name, codec, ch))
    flush()
    return tuple(steps)


def _fits(value: object, kind: str, limit: int) -> bool:
    if kind == "int":
        return type(value) is int and 0 <= value <= limit
    return type(value) is bytes and len(value) == limit


def field(codec: Codec[Any]) -> Any:
    """Declares a record field encoded by `codec` (used as a dataclass default)."""
    return dataclasses.field(metadata={"codec": codec})


class Record:
    """Base of every consensus object with a canonical binary encoding."""

    DOMAIN: ClassVar[bytes] = b""
    MAX_SIZE: ClassVar[int] = 16 * 1024 * 1024
    _codecs: ClassVar[tuple[tuple[str, Codec[Any]], ...] | None] = None
    _steps: ClassVar[tuple[_Run | tuple[str, Codec[Any]], ...] | None] = None

    @classmethod
    def _plan(cls) -> tuple[_Run | tuple[str, Codec[Any]], ...]:
        steps: tuple[_Run | tuple[str, Codec[Any]], ...] | None = cls.__dict__.get("_steps")
        if steps is None:
            steps = _plan(cls._fields())
            cls._steps = steps
        return steps

    @classmethod
    def _fields(cls) -> tuple[tuple[str, Codec[Any]], ...]:
        codecs: tuple[tuple[str, Codec[Any]], ...] | None = cls.__dict__.get("_codecs")
        if codecs is None:
            if not dataclasses.is_dataclass(cls):
                raise TypeError(f"{cls.__name__} must be a dataclass to be a Record")
            found = []
            for f in dataclasses.fields(cls):
                codec = f.metadata.get("codec")
                if codec is None:
                    raise TypeError(f"{cls.__name__}.{f.name} has no codec (use codec.field)")
                found.append((f.name, codec))
            codecs = tuple(found)
            cls._codecs = codecs
        return codecs

    def encode_into(self, out: bytearray) -> None:
        cached = _cache(self).get("_encoding")
        if cached is not None:
            out += cached
            return
        for step in self._plan():
            if isinstance(step, _Run):
                values = [getattr(self, n) for n in step.names]
                if all(
                    _fits(v, kind, lim)
                    for v, (_, kind, lim) in zip(values, step.checks, strict=False)
                ):
                    out += step.fmt.pack(*values)
                    continue
                pairs = list(zip(step.names, step.codecs, strict=False))
            else:
                pairs = [step]
            for name, codec in pairs:  # the general path, and exact errors
                try:
                    codec.encode_into(getattr(self, name), out)
                except EncodeError as err:
                    raise EncodeError(
                        err.code, f"{type(self).__name__}.{name}: {err.message}"
                    ) from err

    def encode(self) -> bytes:
        """The canonical encoding (remembered by records without slots)."""
        cache = _cache(self)
        cached = cache.get("_encoding")
        if cached is None:
            out = bytearray()
            self.encode_into(out)
            cached = cache["_encoding"] = bytes(out)
        return cached

    @classmethod
    def decode_from(cls, data: bytes, pos: int) -> tuple[Self, int]:
        start = pos
        values: dict[str, Any] = {}
        for step in cls._plan():
            if isinstance(step, _Run) and pos + step.fmt.size <= len(data):
                unpacked = step.fmt.unpack_from(data, pos)
                for (name, kind, limit), v in zip(step.checks, unpacked, strict=False):
                    if kind == "int" and v > limit:
                        raise DecodeError(
                            "codec-out-of-range", f"{cls.__name__}.{name}: {v} > {limit}"
                        )
                    values[name] = v
                pos += step.fmt.size
                continue
            pairs = (
                list(zip(step.names, step.codecs, strict=False))
                if isinstance(step, _Run)
                else [step]
            )
            for name, codec in pairs:  # the general path, and exact errors
                try:
                    values[name], pos = codec.decode_from(data, pos)
                except DecodeError as err:
                    raise DecodeError(err.code, f"{cls.__name__}.{name}: {err.message}") from err
        record = cls(**values)
        _cache(record)["_encoding"] = data[start:pos]  # canonical: the bytes just read
        return record, pos

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Decodes exactly one record; anything but its canonical encoding
        raises DecodeError with a reason code."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise DecodeError("codec-not-bytes", f"expected bytes, got {type(data).__name__}")
        data = bytes(data)
        if len(data) > cls.MAX_SIZE:
            raise DecodeError(
                "codec-oversize", f"{cls.__name__}: {len(data)} bytes > {cls.MAX_SIZE}"
            )
        value, end = cls.decode_from(data, 0)
        if end != len(data):
            raise DecodeError(
                "codec-trailing-bytes", f"{cls.__name__}: {len(data) - end} bytes after the record"
            )
        return value

    def object_id(self) -> bytes:
        """BLAKE3-256(DOMAIN ‖ encoding): the object's content id."""
        cache = _cache(self)
        oid = cache.get("_object_id")
        if oid is None:
            oid = cache["_object_id"] = bcai_native.blake3_hash(self.DOMAIN + self.encode())
        return oid


def _cache(record: object) -> dict[str, bytes]:
    """Where a frozen record remembers its encoding and id: its __dict__
    (records declared with slots have none: they get a throwaway dict and
    recompute). Safe because records are frozen."""
    d = getattr(record, "__dict__", None)
    return d if d is not None else {}


class RecordCodec(Codec[Any]):
    """Embeds a record type as a field of another record."""

    def __init__(self, cls: type[Record]) -> None:
        self.cls = cls

    def encode_into(self, value: Any, out: bytearray) -> None:
        if not isinstance(value, self.cls):
            raise EncodeError(
                "codec-bad-type", f"expected {self.cls.__name__}, got {type(value).__name__}"
            )
        value.encode_into(out)

    def decode_from(self, data: bytes, pos: int) -> tuple[Any, int]:
        return self.cls.decode_from(data, pos)
