"""How chain data is laid out in LMDB values (the store's own format,
versioned by FORMAT_VERSION in the `meta` database)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bcai import codec
from bcai.chain import Account, Job, Supply
from bcai.chain._state import Key, State, Undo, Value

FORMAT_VERSION = 1
KINDS = ("account", "stake", "unbond", "supply", "job")


def encode_key(key: Key) -> bytes:
    kind, addr, height = key
    return bytes([KINDS.index(kind)]) + height.to_bytes(8, "big") + addr


def decode_key(raw: bytes) -> Key:
    return (KINDS[raw[0]], raw[9:], int.from_bytes(raw[1:9], "big"))


def encode_value(value: Value) -> bytes:
    return codec.U64.encode(value) if isinstance(value, int) else value.encode()


def decode_value(kind: str, raw: bytes) -> Value:
    if kind == "account":
        return Account.decode(raw)
    if kind == "supply":
        return Supply.decode(raw)
    if kind == "job":
        return Job.decode(raw)
    return codec.U64.decode(raw)


@dataclass(frozen=True, slots=True)
class UndoEntry(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/store/undo-entry"
    key: bytes = codec.field(codec.Bytes(64))
    value: bytes | None = codec.field(codec.Option(codec.Bytes(256)))


@dataclass(frozen=True, slots=True)
class UndoRecord(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/store/undo"
    MAX_SIZE: ClassVar[int] = 1 << 30
    root: bytes = codec.field(codec.FixedBytes(32))
    entries: tuple[UndoEntry, ...] = codec.field(
        codec.ListOf(codec.RecordCodec(UndoEntry), 1 << 24)
    )


@dataclass(frozen=True, slots=True)
class BlockInfo(codec.Record):
    """Per-block bookkeeping: height, cumulative work, size, and status."""

    DOMAIN: ClassVar[bytes] = b"bcai/store/info"
    height: int = codec.field(codec.U64)
    work: int = codec.field(codec.UInt(512))
    tx_bytes: int = codec.field(codec.U32)
    status: int = codec.field(codec.U8)  # see STATUS_*


STATUS_SIDE = 0
STATUS_MAIN = 1
STATUS_INVALID = 2


@dataclass(frozen=True, slots=True)
class TxLocation(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/store/txloc"
    block: bytes = codec.field(codec.FixedBytes(32))
    index: int = codec.field(codec.U32)


def state_items(state: State) -> list[tuple[Key, Value]]:
    items: list[tuple[Key, Value]] = [(("supply", b"", 0), state.supply)]
    items += [(("account", a, 0), v) for a, v in state.accounts.items()]
    items += [(("stake", a, 0), v) for a, v in state.stakes.items()]
    items += [(("unbond", a, h), v) for h, q in state.unbonding.items() for a, v in q.items()]
    items += [(("job", j, 0), v) for j, v in state.jobs.items()]
    return items


def undo_entries(old: dict[Key, Value | None]) -> tuple[UndoEntry, ...]:
    return tuple(
        UndoEntry(key=encode_key(k), value=None if v is None else encode_value(v))
        for k, v in sorted(old.items(), key=lambda kv: encode_key(kv[0]))
    )


def undo_from_record(record: UndoRecord) -> Undo:
    old: dict[Key, Value | None] = {}
    for e in record.entries:
        key = decode_key(e.key)
        old[key] = None if e.value is None else decode_value(key[0], e.value)
    return Undo(root=record.root, old=old)


def with_status(info: BlockInfo, status: int) -> BlockInfo:
    return BlockInfo(height=info.height, work=info.work, tx_bytes=info.tx_bytes, status=status)
