"""A block builder for tests: a devnet genesis with funded keys, transactions
signed in one call, and valid blocks assembled, sealed and imported quickly."""

from __future__ import annotations

from dataclasses import dataclass, field

from bcai import chain
from bcai.chain import (
    COIN,
    Allocation,
    Block,
    Genesis,
    Header,
    ParentContext,
    State,
    Transaction,
    Undo,
    UnsignedTransaction,
)
from bcai.crypto import PrivateKey

SEAL = chain.HashSeal()


def make_keys(n: int, salt: int = 0) -> list[PrivateKey]:
    return [PrivateKey(bytes([salt]) + i.to_bytes(31, "big")) for i in range(n)]


def make_genesis(keys: list[PrivateKey], balance: int = 1_000 * COIN, **params: int) -> Genesis:
    return Genesis(
        params=chain.devnet_params(**params),
        timestamp_ms=1_700_000_000_000,
        allocations=tuple(Allocation(address=k.address, balance=balance, stake=0) for k in keys),
        extra=b"test",
    )


@dataclass
class Chain:
    """One branch: headers from genesis, the live state and undo records."""

    genesis: Genesis
    state: State
    headers: list[Header]
    tx_bytes: list[int] = field(default_factory=list)
    undos: list[Undo] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)

    @classmethod
    def start(cls, genesis: Genesis) -> Chain:
        state = chain.genesis_state(genesis)
        return cls(genesis, state, [chain.genesis_header(genesis, state.root)], [0])

    @property
    def head(self) -> Header:
        return self.headers[-1]

    def context(self) -> ParentContext:
        return ParentContext(
            parent=self.head,
            parent_tx_bytes=self.tx_bytes[-1],
            recent_timestamps_ms=tuple(h.timestamp_ms for h in self.headers[-11:]),
            genesis=self.headers[0],
        )

    def nonce(self, key: PrivateKey) -> int:
        acct = self.state.accounts.get(key.address)
        return acct.nonce if acct else 0

    def tx(
        self,
        key: PrivateKey,
        payload: object,
        *,
        nonce: int | None = None,
        max_fee: int = 10,
        tip: int = 1,
        chain_id: int | None = None,
    ) -> Transaction:
        body = UnsignedTransaction(
            chain_id=self.genesis.params.chain_id if chain_id is None else chain_id,
            sender=key.public_key,
            nonce=self.nonce(key) if nonce is None else nonce,
            max_fee=max_fee,
            tip=tip,
            payload=payload,
        )
        return chain.sign_transaction(key, body)

    def build(
        self, txs: list[Transaction], producer: PrivateKey, spacing_ms: int | None = None
    ) -> Block:
        step = self.genesis.params.target_spacing_ms if spacing_ms is None else spacing_ms
        return chain.assemble_block(
            self.state, self.genesis, self.context(), txs, producer, self.head.timestamp_ms + step
        )

    def now_ms(self) -> int:
        return self.head.timestamp_ms + 5_000

    def process(self, block: Block, now_ms: int | None = None) -> chain.BlockResult:
        return chain.process_block(
            self.state,
            block,
            self.genesis,
            self.context(),
            self.now_ms() if now_ms is None else now_ms,
            SEAL,
        )

    def import_block(self, block: Block) -> None:
        result = self.process(block)
        self.undos.append(result.commit())
        self.headers.append(block.header)
        self.tx_bytes.append(result.tx_bytes)
        self.blocks.append(block)

    def extend(self, txs: list[Transaction], producer: PrivateKey) -> Block:
        block = self.build(txs, producer)
        self.import_block(block)
        return block

    def rewind(self, height: int) -> list[Block]:
        """Reverts blocks above `height`; returns them, oldest first."""
        undone = []
        while self.head.height > height:
            chain.revert(self.state, self.undos.pop())
            self.headers.pop()
            self.tx_bytes.pop()
            undone.append(self.blocks.pop())
        return undone[::-1]
