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
from typing import Any, ClassVar, Self

import bcai_native
from bcai.codec._errors import DecodeError, EncodeError
from bcai.codec._types import Codec


def field(codec: Codec[Any]) -> Any:
    """Declares a record field encoded by `codec` (used as a dataclass default)."""
    return dataclasses.field(metadata={"codec": codec})


class Record:
    """Base of every consensus object with a canonical binary encoding."""

    DOMAIN: ClassVar[bytes] = b""
    MAX_SIZE: ClassVar[int] = 16 * 1024 * 1024
    _codecs: ClassVar[tuple[tuple[str, Codec[Any]], ...] | None] = None

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
        for name, codec in self._fields():
            try:
                codec.encode_into(getattr(self, name), out)
            except EncodeError as err:
                raise EncodeError(err.code, f"{type(self).__name__}.{name}: {err.message}") from err

    def encode(self) -> bytes:
        """The canonical encoding."""
        out = bytearray()
        self.encode_into(out)
        return bytes(out)

    @classmethod
    def decode_from(cls, data: bytes, pos: int) -> tuple[Self, int]:
        values = {}
        for name, codec in cls._fields():
            try:
                values[name], pos = codec.decode_from(data, pos)
            except DecodeError as err:
                raise DecodeError(err.code, f"{cls.__name__}.{name}: {err.message}") from err
        return cls(**values), pos

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
        return bcai_native.blake3_hash(self.DOMAIN + self.encode())


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
