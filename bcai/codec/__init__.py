"""bcai.codec: the canonical binary encoding of every consensus object.

Fixed field order; big-endian fixed-width integers; u32-length-prefixed bytes,
text and lists with declared maxima; 0/1 option tags; u8 variant tags. The
decoder is strict: trailing bytes, out-of-range values, oversize fields,
unknown tags and invalid UTF-8 raise `DecodeError` with a reason code, so
every value has exactly one encoding. Layer: foundation (pure, no I/O).
"""

from bcai.codec._errors import DecodeError, EncodeError
from bcai.codec._record import Record, RecordCodec, field
from bcai.codec._types import (
    F64,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    U128,
    Bool,
    Bytes,
    Codec,
    FixedBytes,
    Int,
    ListOf,
    Option,
    Text,
    UInt,
    Variant,
)

__all__ = [
    "F64",
    "I32",
    "I64",
    "U8",
    "U16",
    "U32",
    "U64",
    "U128",
    "Bool",
    "Bytes",
    "Codec",
    "DecodeError",
    "EncodeError",
    "FixedBytes",
    "Int",
    "ListOf",
    "Option",
    "Record",
    "RecordCodec",
    "Text",
    "UInt",
    "Variant",
    "field",
]
