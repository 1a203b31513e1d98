"""Transactions, block headers and blocks, with their canonical encodings.

The large records are declared without slots so that each instance remembers
its encoding and id (see bcai.codec._record): a transaction is encoded once,
not once per rule that needs its bytes, size or id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from bcai import codec
from bcai.crypto import address, blake3

MAX_SEAL_BYTES = 1 << 20
MAX_TXS_ENCODED = 1 << 20
SIGNATURE = codec.FixedBytes(64)
KEY = codec.FixedBytes(32)
ADDRESS = codec.FixedBytes(20)


@dataclass(frozen=True, slots=True)
class Transfer(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/tx/transfer"
    to: bytes = codec.field(ADDRESS)
    amount: int = codec.field(codec.U64)


@dataclass(frozen=True, slots=True)
class Stake(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/tx/stake"
    amount: int = codec.field(codec.U64)


@dataclass(frozen=True, slots=True)
class Unstake(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/tx/unstake"
    amount: int = codec.field(codec.U64)


@dataclass(frozen=True, slots=True)
class Burn(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/tx/burn"
    amount: int = codec.field(codec.U64)


@dataclass(frozen=True, slots=True)
class MatMulPost(codec.Record):
    """A MatMul job: pay `amount` (held in escrow) for C = A·B, where A
    (n×k) and B (k×m) are blobs named by their content ids, with 7-bit
    signed entries. The block whose PoUW seal carries C's content id is paid
    the escrow; unsealed after block `deadline`, it returns to the poster.
    The job's id is the posting transaction's id."""

    DOMAIN: ClassVar[bytes] = b"bcai/tx/matmul-post"
    a: bytes = codec.field(codec.FixedBytes(32))
    b: bytes = codec.field(codec.FixedBytes(32))
    n: int = codec.field(codec.U32)
    k: int = codec.field(codec.U32)
    m: int = codec.field(codec.U32)
    amount: int = codec.field(codec.U64)
    deadline: int = codec.field(codec.U64)


Payload = Transfer | Stake | Unstake | Burn | MatMulPost
PAYLOAD = codec.Variant({1: Transfer, 2: Stake, 3: Unstake, 4: Burn, 5: MatMulPost})


@dataclass(frozen=True)
class UnsignedTransaction(codec.Record):
    """What the sender signs."""

    DOMAIN: ClassVar[bytes] = b"bcai/tx/unsigned"
    chain_id: int = codec.field(codec.U32)
    sender: bytes = codec.field(KEY)
    nonce: int = codec.field(codec.U64)
    max_fee: int = codec.field(codec.U64)
    tip: int = codec.field(codec.U64)
    payload: Any = codec.field(PAYLOAD)


@dataclass(frozen=True)
class Transaction(codec.Record):
    """A signed transaction. Fees are per byte of its encoding ("weight"):
    it pays weight × (base fee + min(tip, max_fee − base fee))."""

    DOMAIN: ClassVar[bytes] = b"bcai/tx"
    MAX_SIZE: ClassVar[int] = 64 * 1024
    body: UnsignedTransaction = codec.field(codec.RecordCodec(UnsignedTransaction))
    signature: bytes = codec.field(SIGNATURE)

    @property
    def sender_address(self) -> bytes:
        return address(self.body.sender)

    def signing_message(self) -> bytes:
        return self.body.object_id()

    def tx_id(self) -> bytes:
        return self.object_id()

    def weight(self) -> int:
        return len(self.encode())


@dataclass(frozen=True)
class Header(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/header"
    MAX_SIZE: ClassVar[int] = MAX_SEAL_BYTES + 4096
    version: int = codec.field(codec.U8)
    chain_id: int = codec.field(codec.U32)
    height: int = codec.field(codec.U64)
    parent: bytes = codec.field(KEY)
    timestamp_ms: int = codec.field(codec.U64)
    tx_root: bytes = codec.field(KEY)
    state_root: bytes = codec.field(KEY)
    base_fee: int = codec.field(codec.U64)
    target: int = codec.field(codec.UInt(256))
    producer: bytes = codec.field(KEY)
    seal: bytes = codec.field(codec.Bytes(MAX_SEAL_BYTES))
    signature: bytes = codec.field(SIGNATURE)

    def block_hash(self) -> bytes:
        return self.object_id()

    def _encode_until(self, stop: str) -> bytes:
        """The encoding of the fields before `stop`."""
        out = bytearray()
        for name, c in self._fields():
            if name == stop:
                break
            c.encode_into(getattr(self, name), out)
        return bytes(out)

    def seal_prefix(self) -> bytes:
        """What the seal commits to: the header up to (not including) the seal."""
        return b"bcai/seal" + self._encode_until("seal")

    def signing_message(self) -> bytes:
        """What the producer signs: a hash of the header up to its signature."""
        return blake3(b"bcai/header/sig" + self._encode_until("signature"))


@dataclass(frozen=True)
class Block(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/block"
    MAX_SIZE: ClassVar[int] = 64 * 1024 * 1024
    header: Header = codec.field(codec.RecordCodec(Header))
    txs: tuple[Transaction, ...] = codec.field(
        codec.ListOf(codec.RecordCodec(Transaction), MAX_TXS_ENCODED)
    )

    def block_hash(self) -> bytes:
        return self.header.block_hash()
