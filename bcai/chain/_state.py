"""The chain state and its commitment.

State = accounts (balance, nonce), stakes, the unbonding queue and the supply
counters, each stored under a 32-byte key of a sparse Merkle tree whose root
is in every header:

| entry | tree key | value (canonical encoding) |
|---|---|---|
| account | BLAKE3("bcai/state/account" ‖ address) | `Account(balance u64, nonce u64)` |
| stake | BLAKE3("bcai/state/stake" ‖ address) | `U64` |
| unbonding | BLAKE3("bcai/state/unbond" ‖ release height u64 ‖ address) | `U64` |
| supply | BLAKE3("bcai/state/supply") | `Supply(genesis, minted, burned)` |

The tree stores BLAKE3(value). Absent entries (zero balance and nonce, zero
stake) are deleted from the tree, so equal states have equal roots.

Block application goes through an `Overlay`: reads fall through to the base
state, writes are recorded; nothing touches the base until `commit`, which
returns the undo record that reverts it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import bcai_native
from bcai import codec
from bcai.chain._types import MatMulPost
from bcai.crypto import blake3

EMPTY_ROOT = bytes(32)
U64_MAX = 2**64 - 1

# (kind, address, release height); kind is account, stake, unbond, supply or
# job (the address is the job id)
Key = tuple[str, bytes, int]


@dataclass(frozen=True, slots=True)
class Account(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/state/account"
    balance: int = codec.field(codec.U64)
    nonce: int = codec.field(codec.U64)


@dataclass(frozen=True, slots=True)
class Supply(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/state/supply"
    genesis: int = codec.field(codec.U128)
    minted: int = codec.field(codec.U128)
    burned: int = codec.field(codec.U128)


JOB_PENDING, JOB_SEALED, JOB_REFUNDED = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Job(codec.Record):
    """A MatMul job's record: its post, then who sealed it and C's id."""

    DOMAIN: ClassVar[bytes] = b"bcai/state/job"
    poster: bytes = codec.field(codec.FixedBytes(20))
    post: MatMulPost = codec.field(codec.RecordCodec(MatMulPost))
    status: int = codec.field(codec.U8)  # JOB_*
    solver: bytes = codec.field(codec.FixedBytes(20))  # the sealing block's producer
    product: bytes = codec.field(codec.FixedBytes(32))  # content id of C

    @property
    def amount(self) -> int:
        return self.post.amount

    @property
    def deadline(self) -> int:
        return self.post.deadline

    @property
    def held(self) -> int:
        """What the job holds in escrow."""
        return self.post.amount if self.status == JOB_PENDING else 0


ZERO_ACCOUNT = Account(balance=0, nonce=0)
SUPPLY_KEY: Key = ("supply", b"", 0)


def tree_key(key: Key) -> bytes:
    kind, addr, height = key
    if kind == "account":
        return blake3(b"bcai/state/account" + addr)
    if kind == "stake":
        return blake3(b"bcai/state/stake" + addr)
    if kind == "unbond":
        return blake3(b"bcai/state/unbond" + height.to_bytes(8, "big") + addr)
    if kind == "job":
        return blake3(b"bcai/state/job" + addr)
    return blake3(b"bcai/state/supply")


Value = Account | Supply | Job | int


def encode_value(value: Value) -> bytes:
    if isinstance(value, int):
        return codec.U64.encode(value)
    return value.encode()


def is_absent(value: Value | None) -> bool:
    return value is None or value in (0, ZERO_ACCOUNT)


@dataclass
class State:
    """The state at one block: plain dicts plus the shared, persistent tree."""

    tree: bcai_native.SparseMerkleTree
    root: bytes = EMPTY_ROOT
    accounts: dict[bytes, Account] = field(default_factory=dict)
    stakes: dict[bytes, int] = field(default_factory=dict)
    unbonding: dict[int, dict[bytes, int]] = field(default_factory=dict)
    jobs: dict[bytes, Job] = field(default_factory=dict)
    supply: Supply = field(default_factory=lambda: Supply(genesis=0, minted=0, burned=0))

    def read(self, key: Key) -> Value | None:
        kind, addr, height = key
        if kind == "account":
            return self.accounts.get(addr)
        if kind == "stake":
            return self.stakes.get(addr)
        if kind == "unbond":
            return self.unbonding.get(height, {}).get(addr)
        if kind == "job":
            return self.jobs.get(addr)
        return self.supply

    def write(self, key: Key, value: Value | None) -> None:
        kind, addr, height = key
        absent = is_absent(value)
        if kind == "account":
            if absent:
                self.accounts.pop(addr, None)
            else:
                assert isinstance(value, Account)
                self.accounts[addr] = value
        elif kind == "stake":
            if absent:
                self.stakes.pop(addr, None)
            else:
                assert isinstance(value, int)
                self.stakes[addr] = value
        elif kind == "unbond":
            queue = self.unbonding.setdefault(height, {})
            if absent:
                queue.pop(addr, None)
                if not queue:
                    del self.unbonding[height]
            else:
                assert isinstance(value, int)
                queue[addr] = value
        elif kind == "job":
            if absent:
                self.jobs.pop(addr, None)
            else:
                assert isinstance(value, Job)
                self.jobs[addr] = value
        else:
            assert isinstance(value, Supply)
            self.supply = value

    def total_held(self) -> int:
        """Σ balances + Σ stakes + Σ unbonding + Σ escrows."""
        return (
            sum(a.balance for a in self.accounts.values())
            + sum(self.stakes.values())
            + sum(sum(q.values()) for q in self.unbonding.values())
            + sum(j.held for j in self.jobs.values())
        )

    def supply_invariant_holds(self) -> bool:
        """genesis + minted − burned = Σ balances + Σ stakes + Σ unbonding
        + Σ escrows."""
        s = self.supply
        return s.genesis + s.minted - s.burned == self.total_held()


@dataclass
class Undo:
    """Old values of every key a block changed, and the root before it."""

    root: bytes
    old: dict[Key, Value | None]


class Overlay:
    """Copy-on-write view of a State for applying one block."""

    def __init__(self, base: State) -> None:
        self.base = base
        self.writes: dict[Key, Value | None] = {}

    def read(self, key: Key) -> Value | None:
        if key in self.writes:
            return self.writes[key]
        return self.base.read(key)

    def write(self, key: Key, value: Value | None) -> None:
        self.writes[key] = None if is_absent(value) else value

    def account(self, addr: bytes) -> Account:
        value = self.read(("account", addr, 0))
        return value if isinstance(value, Account) else ZERO_ACCOUNT

    def stake(self, addr: bytes) -> int:
        value = self.read(("stake", addr, 0))
        return value if isinstance(value, int) else 0

    def supply(self) -> Supply:
        value = self.read(SUPPLY_KEY)
        assert isinstance(value, Supply)
        return value

    def unbonding_at(self, height: int) -> dict[bytes, int]:
        """Entries releasing at `height`, with this overlay's writes applied."""
        out = dict(self.base.unbonding.get(height, {}))
        for (kind, addr, h), value in self.writes.items():
            if kind == "unbond" and h == height:
                if isinstance(value, int):
                    out[addr] = value
                else:
                    out.pop(addr, None)
        return out

    def job(self, job_id: bytes) -> Job | None:
        value = self.read(("job", job_id, 0))
        return value if isinstance(value, Job) else None

    def expired_jobs(self, height: int) -> list[bytes]:
        """Ids of pending jobs whose deadline is below `height`, sorted."""
        ids = set(self.base.jobs) | {a for (kind, a, _) in self.writes if kind == "job"}
        out = []
        for job_id in sorted(ids):
            job = self.job(job_id)
            if job is not None and job.status == JOB_PENDING and job.deadline < height:
                out.append(job_id)
        return out

    def compute_root(self) -> bytes:
        """The state root with these writes applied (the tree keeps old roots)."""
        updates = [
            (tree_key(k), None if v is None else blake3(encode_value(v)))
            for k, v in self.writes.items()
        ]
        return self.base.tree.update(self.base.root, updates)

    def commit(self, root: bytes) -> Undo:
        """Applies the writes to the base state; returns how to revert them."""
        undo = Undo(root=self.base.root, old={k: self.base.read(k) for k in self.writes})
        for k, v in self.writes.items():
            self.base.write(k, v)
        self.base.root = root
        return undo


def revert(state: State, undo: Undo) -> None:
    """Reverts one committed block (the tree still holds the old root)."""
    for k, v in undo.old.items():
        state.write(k, v)
    state.root = undo.root
