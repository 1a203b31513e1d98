"""The chain in LMDB: one environment per data dir, with the named databases
of DESIGN §7. Every block import (or whole reorg) is one write transaction:
block, bookkeeping, state changes, tree nodes, undo data, indexes and the
head pointer commit together, so a process killed at any instant restarts on
a consistent chain.

Blocking by design (py-lmdb); the trio node calls it through
`AsyncChainStore`, which runs writes on worker threads one at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lmdb

import bcai_native
from bcai import chain
from bcai.chain import (
    Account,
    Block,
    Genesis,
    HashSeal,
    Header,
    InvalidBlock,
    Job,
    ParentContext,
    SealVerifier,
    State,
    Tip,
    Transaction,
    Undo,
)
from bcai.chain._state import Key
from bcai.store._consistency import verify_consistency
from bcai.store._errors import StoreError
from bcai.store._records import (
    FORMAT_VERSION,
    STATUS_INVALID,
    STATUS_MAIN,
    STATUS_SIDE,
    BlockInfo,
    TxLocation,
    UndoRecord,
    decode_key,
    decode_value,
    encode_key,
    encode_value,
    state_items,
    undo_entries,
    undo_from_record,
    with_status,
)

DATABASES = (
    "headers", "bodies", "info", "height", "state", "smt",
    "txindex", "undo", "jobs", "blobs", "peers", "meta",
)  # fmt: skip
DEFAULT_MAP_SIZE = 1 << 34  # 16 GiB of address space; grown by reopening when full
MAX_HEADERS_PER_QUERY = 2000
# Re-applying stored blocks (in a reorg) skips the future-time rule, which
# was checked against the clock when each block arrived.
NO_CLOCK_LIMIT = 2**63


@dataclass
class ImportResult:
    """What importing a block did.

    status: ``head`` (new head), ``side`` (stored on a side branch), ``known``.
    orphaned: transactions of blocks that left the main chain in a reorg and
    are not in the new branch (hand them back to the mempool).
    """

    status: str
    block_hash: bytes
    reorg_depth: int = 0
    orphaned: list[Transaction] = field(default_factory=list)


def _height_key(height: int) -> bytes:
    return height.to_bytes(8, "big")


class ChainStore:
    """Blocks, state and indexes of one chain in one LMDB environment."""

    def __init__(
        self,
        path: str | Path,
        genesis: Genesis,
        *,
        seal: SealVerifier | None = None,
        map_size: int = DEFAULT_MAP_SIZE,
        reorg_limit: int = 10_000,
        sync_meta: bool = False,
    ) -> None:
        """Opens (or creates) the store in `path` for the chain of `genesis`.

        `sync_meta=False` (LMDB's MDB_NOMETASYNC) fsyncs each commit once
        instead of twice: the database stays consistent whatever happens, but
        a crash of the whole machine (not of the process) may undo the last
        committed block, which peers will simply send again.
        """
        self.path = Path(path)
        self.genesis = genesis
        self.genesis_id = genesis.object_id()
        self.seal = seal or HashSeal()
        self.reorg_limit = reorg_limit
        # held by every import and by whoever reads the in-memory state to
        # build on it: imports come from several threads (gossip, sync, the
        # producer) and each mutates `state` in place
        self.lock = threading.RLock()
        self._check_existing()
        self.path.mkdir(parents=True, exist_ok=True)
        self.env = lmdb.open(
            str(self.path), max_dbs=len(DATABASES), map_size=map_size, metasync=sync_meta
        )
        self.db = {name: self.env.open_db(name.encode()) for name in DATABASES}
        self._pending_nodes: list[tuple[bytes, bytes]] = []
        self._smt_seq = self._next_smt_seq = 0
        self.last_commit_seconds = 0.0  # the last import's write transaction (a metric)
        with self._read() as txn:
            initialized = txn.get(b"genesis", db=self.db["meta"]) is not None
        if not initialized:
            self._write_genesis()
        self._load()

    # ------------------------------------------------------------ opening

    def _check_existing(self) -> None:
        """Refuses a data dir of another chain or format before touching it."""
        if not (self.path / "data.mdb").exists():
            return
        env = lmdb.open(str(self.path), readonly=True, lock=False, max_dbs=len(DATABASES))
        try:
            try:
                meta = env.open_db(b"meta", create=False)
            except lmdb.NotFoundError as err:
                raise StoreError(
                    "store-unknown-format", f"{self.path} is not a bcai chain store"
                ) from err
            with env.begin() as txn:
                fmt = txn.get(b"format", db=meta)
                gid = txn.get(b"genesis", db=meta)
        finally:
            env.close()
        if fmt is None or gid is None:
            raise StoreError("store-unknown-format", f"{self.path} has no format or genesis record")
        if int.from_bytes(fmt, "big") != FORMAT_VERSION:
            raise StoreError(
                "store-unknown-format",
                f"{self.path} has store format {int.from_bytes(fmt, 'big')}, "
                f"this bcai reads format {FORMAT_VERSION}",
            )
        if gid != self.genesis_id:
            raise StoreError(
                "store-wrong-chain",
                f"{self.path} holds the chain with genesis {gid.hex()[:16]}…, "
                f"not {self.genesis_id.hex()[:16]}…; use another data dir",
            )

    def _write_genesis(self) -> None:
        state = chain.genesis_state(self.genesis)
        header = chain.genesis_header(self.genesis, state.root)
        block = Block(header=header, txs=())
        bh = header.block_hash()
        with self._write() as txn:
            meta = self.db["meta"]
            txn.put(b"format", FORMAT_VERSION.to_bytes(4, "big"), db=meta)
            txn.put(b"genesis", self.genesis_id, db=meta)
            self._put_block(txn, block, BlockInfo(height=0, work=0, tx_bytes=0, status=STATUS_MAIN))
            txn.put(_height_key(0), bh, db=self.db["height"])
            for key, value in state_items(state):
                txn.put(encode_key(key), encode_value(value), db=self.db["state"])
            for seq, (_, enc) in enumerate(state.tree.drain_new_nodes()):
                txn.put(seq.to_bytes(8, "big"), enc, db=self.db["smt"], append=True)
            txn.put(b"head", bh, db=meta)

    def _load(self) -> None:
        """Rebuilds the in-memory head state from the database."""
        tree = bcai_native.SparseMerkleTree()
        state = State(tree=tree)
        with self._read() as txn:
            head_hash = txn.get(b"head", db=self.db["meta"])
            if head_hash is None:
                raise StoreError("store-corrupt", "no head pointer")
            nodes = txn.cursor(db=self.db["smt"])
            tree.load_nodes(v for _, v in nodes)
            self._smt_seq = int.from_bytes(nodes.key(), "big") + 1 if nodes.last() else 0
            for k, v in txn.cursor(db=self.db["state"]):
                key = decode_key(bytes(k))
                state.write(key, decode_value(key[0], bytes(v)))
            self.genesis_header = self._header(txn, self._hash_at(txn, 0))
            self.head = self._header(txn, head_hash)
            self.head_info = self._info(txn, head_hash)
        state.root = self.head.state_root
        try:
            tree.prove(state.root, bytes(32))
        except LookupError as err:
            raise StoreError("store-corrupt", "the head's state tree is incomplete") from err
        self.state = state
        self._pending_nodes = []

    def close(self) -> None:
        self.env.close()

    def __enter__(self) -> ChainStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ transactions

    @contextmanager
    def _read(self) -> Iterator[Any]:
        with self.env.begin(buffers=False) as txn:
            yield txn

    @contextmanager
    def _write(self) -> Iterator[Any]:
        with self.env.begin(write=True) as txn:
            yield txn

    def _run_write(self, fn: Any) -> None:
        """Runs fn(txn) in one write transaction, growing the map when full."""
        while True:
            try:
                with self._write() as txn:
                    fn(txn)
                return
            except lmdb.MapFullError:
                self.env.set_mapsize(self.env.info()["map_size"] * 2)

    # ------------------------------------------------------------ reads

    def _header(self, txn: Any, block_hash: bytes) -> Header:
        raw = txn.get(block_hash, db=self.db["headers"])
        if raw is None:
            raise StoreError("store-not-found", f"no block {block_hash.hex()}")
        return Header.decode(raw)

    def _info(self, txn: Any, block_hash: bytes) -> BlockInfo:
        raw = txn.get(block_hash, db=self.db["info"])
        if raw is None:
            raise StoreError("store-not-found", f"no block {block_hash.hex()}")
        return BlockInfo.decode(raw)

    def _hash_at(self, txn: Any, height: int) -> bytes:
        raw = txn.get(_height_key(height), db=self.db["height"])
        if raw is None:
            raise StoreError("store-not-found", f"no main-chain block at height {height}")
        return bytes(raw)

    def _block(self, txn: Any, block_hash: bytes) -> Block:
        raw = txn.get(block_hash, db=self.db["bodies"])
        if raw is None:
            raise StoreError("store-not-found", f"no block {block_hash.hex()}")
        return Block.decode(raw)

    @property
    def head_hash(self) -> bytes:
        return self.head.block_hash()

    def has_block(self, block_hash: bytes) -> bool:
        with self._read() as txn:
            return txn.get(block_hash, db=self.db["info"]) is not None

    def get_header(self, block_hash: bytes) -> Header:
        with self._read() as txn:
            return self._header(txn, block_hash)

    def get_block(self, block_hash: bytes) -> Block:
        with self._read() as txn:
            return self._block(txn, block_hash)

    def get_block_info(self, block_hash: bytes) -> BlockInfo:
        with self._read() as txn:
            return self._info(txn, block_hash)

    def get_block_by_height(self, height: int) -> Block:
        with self._read() as txn:
            return self._block(txn, self._hash_at(txn, height))

    def get_transaction(self, tx_id: bytes) -> tuple[Transaction, bytes, int]:
        """(transaction, block hash, index) of a main-chain transaction."""
        with self._read() as txn:
            raw = txn.get(tx_id, db=self.db["txindex"])
            if raw is None:
                raise StoreError("store-not-found", f"no transaction {tx_id.hex()}")
            loc = TxLocation.decode(raw)
            return self._block(txn, loc.block).txs[loc.index], loc.block, loc.index

    def get_headers(self, start_height: int, count: int) -> list[Header]:
        """Main-chain headers from `start_height`, at most 2000."""
        count = min(count, MAX_HEADERS_PER_QUERY)
        out = []
        with self._read() as txn:
            for h in range(start_height, min(start_height + count, self.head.height + 1)):
                out.append(self._header(txn, self._hash_at(txn, h)))
        return out

    def read_account(self, address: bytes) -> Account:
        """The head's account, read from the database."""
        with self._read() as txn:
            raw = txn.get(encode_key(("account", address, 0)), db=self.db["state"])
        return Account.decode(raw) if raw is not None else Account(balance=0, nonce=0)

    def read_job(self, job_id: bytes) -> Job | None:
        """The head's record of MatMul job `job_id`, read from the database."""
        with self._read() as txn:
            raw = txn.get(encode_key(("job", job_id, 0)), db=self.db["state"])
        return Job.decode(raw) if raw is not None else None

    def read_stake(self, address: bytes) -> int:
        """The head's stake of `address`, read from the database."""
        with self._read() as txn:
            raw = txn.get(encode_key(("stake", address, 0)), db=self.db["state"])
        value = decode_value("stake", raw) if raw is not None else 0
        assert isinstance(value, int)
        return value

    def get_account(self, address: bytes) -> tuple[Account, tuple[list[bytes], Any]]:
        """The head's account with a proof against the head's state root
        (check it with `bcai_native.smt_verify`)."""
        key: Key = ("account", address, 0)
        proof = self.state.tree.prove(self.head.state_root, chain.tree_key(key))
        return self.read_account(address), proof

    # ------------------------------------------------------------ writes

    def _put_block(self, txn: Any, block: Block, info: BlockInfo) -> None:
        bh = block.block_hash()
        txn.put(bh, block.header.encode(), db=self.db["headers"])
        txn.put(bh, block.encode(), db=self.db["bodies"])
        txn.put(bh, info.encode(), db=self.db["info"])

    def context_for(self, parent_hash: bytes) -> ParentContext:
        """What building or checking a child of `parent_hash` needs."""
        with self._read() as txn:
            return self._context(txn, parent_hash)

    def _context(self, txn: Any, parent_hash: bytes) -> ParentContext:
        parent = self._header(txn, parent_hash)
        stamps = [parent.timestamp_ms]
        h = parent
        while len(stamps) < chain._transition.MEDIAN_TIME_SPAN and h.height > 0:
            h = self._header(txn, h.parent)
            stamps.append(h.timestamp_ms)
        return ParentContext(
            parent=parent,
            parent_tx_bytes=self._info(txn, parent_hash).tx_bytes,
            recent_timestamps_ms=tuple(reversed(stamps)),
            genesis=self.genesis_header,
        )

    def _write_state(self, txn: Any, keys: set[Key]) -> None:
        for key in keys:
            value = self.state.read(key)
            if value is None:
                txn.delete(encode_key(key), db=self.db["state"])
            else:
                txn.put(encode_key(key), encode_value(value), db=self.db["state"])

    def _node_puts(self) -> list[tuple[bytes, bytes]]:
        """The new tree nodes under a running sequence number: appended, one
        block's nodes share a few pages instead of dirtying one page each
        (they are read back only in bulk, when the store opens)."""
        seq = self._smt_seq
        puts = [
            ((seq + i).to_bytes(8, "big"), enc) for i, (_, enc) in enumerate(self._pending_nodes)
        ]
        self._next_smt_seq = seq + len(puts)
        return puts

    def _write_nodes(self, txn: Any) -> None:
        for key, value in self._node_puts():
            txn.put(key, value, db=self.db["smt"], append=True)

    def _nodes_written(self) -> None:
        self._pending_nodes = []
        self._smt_seq = self._next_smt_seq

    def _index(self, txn: Any, block: Block, add: bool) -> None:
        bh = block.block_hash()
        for i, tx in enumerate(block.txs):
            if add:
                txn.put(tx.tx_id(), TxLocation(block=bh, index=i).encode(), db=self.db["txindex"])
            else:
                txn.delete(tx.tx_id(), db=self.db["txindex"])

    def import_block(self, block: Block, now_ms: int) -> ImportResult:
        """Validates and stores `block`, moving the head if its branch has
        more work. Raises InvalidBlock (nothing written) if it is invalid."""
        with self.lock:
            return self._import_block(block, now_ms)

    def _import_block(self, block: Block, now_ms: int) -> ImportResult:
        bh = block.block_hash()
        with self._read() as txn:
            if txn.get(bh, db=self.db["info"]) is not None:
                if self._info(txn, bh).status == STATUS_INVALID:
                    raise InvalidBlock("block-known-invalid", "this block was found invalid before")
                return ImportResult("known", bh)
            parent_raw = txn.get(block.header.parent, db=self.db["info"])
            if parent_raw is None:
                raise InvalidBlock("block-unknown-parent", "parent is not stored")
            parent_info = BlockInfo.decode(parent_raw)
            if parent_info.status == STATUS_INVALID:
                raise InvalidBlock("block-invalid-parent", "parent was found invalid")
            ctx = self._context(txn, block.header.parent)
        if block.header.parent == self.head_hash:
            return self._extend_head(block, ctx, parent_info, now_ms)
        return self._import_side(block, ctx, parent_info, now_ms)

    def _extend_head(
        self, block: Block, ctx: ParentContext, parent_info: BlockInfo, now_ms: int
    ) -> ImportResult:
        result = chain.process_block(self.state, block, self.genesis, ctx, now_ms, self.seal)
        old = {k: self.state.read(k) for k in result.overlay.writes}
        self._pending_nodes += self.state.tree.drain_new_nodes()
        info = BlockInfo(
            height=block.header.height,
            work=parent_info.work + chain.work_of(block.header.target),
            tx_bytes=result.tx_bytes,
            status=STATUS_MAIN,
        )
        undo = UndoRecord(root=self.state.root, entries=undo_entries(old)).encode()
        bh = block.block_hash()
        height = _height_key(info.height)
        # Everything is encoded before the write transaction opens, so the
        # single writer holds it only for the puts.
        state_puts = [
            (encode_key(k), None if v is None else encode_value(v))
            for k, v in result.overlay.writes.items()
        ]
        node_puts = self._node_puts()
        index_puts = [
            (tx.tx_id(), TxLocation(block=bh, index=i).encode()) for i, tx in enumerate(block.txs)
        ]
        db = self.db

        def write(txn: Any) -> None:
            self._put_block(txn, block, info)
            txn.put(height, bh, db=db["height"])
            for key, value in state_puts:
                if value is None:
                    txn.delete(key, db=db["state"])
                else:
                    txn.put(key, value, db=db["state"])
            for key, value in node_puts:
                txn.put(key, value, db=db["smt"], append=True)
            txn.put(height, undo, db=db["undo"], append=True)
            for key, value in index_puts:
                txn.put(key, value, db=db["txindex"])
            txn.put(b"head", bh, db=db["meta"])

        t0 = time.perf_counter()
        self._run_write(write)
        self.last_commit_seconds = time.perf_counter() - t0
        result.commit()
        self._nodes_written()
        self.head, self.head_info = block.header, info
        return ImportResult("head", bh)

    def _import_side(
        self, block: Block, ctx: ParentContext, parent_info: BlockInfo, now_ms: int
    ) -> ImportResult:
        size = chain.check_block_without_state(block, self.genesis, ctx, now_ms, self.seal)
        info = BlockInfo(
            height=block.header.height,
            work=parent_info.work + chain.work_of(block.header.target),
            tx_bytes=size,
            status=STATUS_SIDE,
        )
        self._run_write(lambda txn: self._put_block(txn, block, info))
        bh = block.block_hash()
        new_tip = Tip(bh, info.height, info.work)
        head_tip = Tip(self.head_hash, self.head_info.height, self.head_info.work)
        if chain.is_better(new_tip, head_tip):
            return self._reorg_to(bh)
        return ImportResult("side", bh)

    def _plan_reorg(
        self, tip_hash: bytes
    ) -> tuple[list[Block], int, list[Block], list[Undo]] | None:
        """(new branch oldest first, fork height, main blocks to undo, their
        undo data), or None when the reorg is deeper than the limit."""
        with self._read() as txn:
            branch: list[Block] = []
            h = tip_hash
            while self._info(txn, h).status != STATUS_MAIN:
                branch.append(self._block(txn, h))
                h = branch[-1].header.parent
            fork_height = self._info(txn, h).height
            if self.head.height - fork_height > self.reorg_limit:
                return None
            old_blocks = [
                self._block(txn, self._hash_at(txn, i))
                for i in range(fork_height + 1, self.head.height + 1)
            ]
            old_undos = [
                undo_from_record(
                    UndoRecord.decode(txn.get(_height_key(b.header.height), db=self.db["undo"]))
                )
                for b in old_blocks
            ]
        branch.reverse()
        return branch, fork_height, old_blocks, old_undos

    def _reorg_to(self, tip_hash: bytes) -> ImportResult:
        plan = self._plan_reorg(tip_hash)
        if plan is None:
            return ImportResult("side", tip_hash)
        branch, fork_height, old_blocks, old_undos = plan
        touched: set[Key] = set()
        for undo in reversed(old_undos):
            touched.update(undo.old)
            chain.revert(self.state, undo)
        applied: list[tuple[Block, BlockInfo, Undo]] = []
        try:
            for block in branch:
                with self._read() as txn:
                    ctx = self._context(txn, block.header.parent)
                    info = self._info(txn, block.block_hash())
                # The future-time rule was checked when the block arrived.
                result = chain.process_block(
                    self.state, block, self.genesis, ctx, NO_CLOCK_LIMIT, self.seal
                )
                touched.update(result.overlay.writes)
                applied.append((block, info, result.commit()))
        except InvalidBlock as err:
            self._restore_after_failed_reorg(applied, old_blocks)
            bad = branch[len(applied)].block_hash()
            if err.code != "block-data-missing":  # missing data is no verdict
                self._mark_invalid([b.block_hash() for b in branch[len(applied) :]])
            raise InvalidBlock(err.code, f"block {bad.hex()[:16]}…: {err.message}") from err
        self._pending_nodes += self.state.tree.drain_new_nodes()
        try:
            self._run_write(
                lambda txn: self._write_reorg(
                    txn, tip_hash, fork_height, old_blocks, applied, touched
                )
            )
        except BaseException:
            self._load()  # memory is ahead of the disk: rebuild it from the disk
            raise
        self._nodes_written()
        last_block, last_info, _ = applied[-1]
        self.head, self.head_info = last_block.header, with_status(last_info, STATUS_MAIN)
        new_ids = {tx.tx_id() for b in branch for tx in b.txs}
        orphaned = [tx for b in old_blocks for tx in b.txs if tx.tx_id() not in new_ids]
        return ImportResult("head", tip_hash, reorg_depth=len(old_blocks), orphaned=orphaned)

    def _write_reorg(
        self,
        txn: Any,
        tip_hash: bytes,
        fork_height: int,
        old_blocks: list[Block],
        applied: list[tuple[Block, BlockInfo, Undo]],
        touched: set[Key],
    ) -> None:
        for b in old_blocks:
            bh = b.block_hash()
            info = self._info(txn, bh)
            txn.put(bh, with_status(info, STATUS_SIDE).encode(), db=self.db["info"])
            self._index(txn, b, add=False)
            txn.delete(_height_key(b.header.height), db=self.db["undo"])
        for height in range(fork_height + 1, self.head.height + 1):
            txn.delete(_height_key(height), db=self.db["height"])
        for b, info, undo in applied:
            bh = b.block_hash()
            txn.put(bh, with_status(info, STATUS_MAIN).encode(), db=self.db["info"])
            txn.put(_height_key(info.height), bh, db=self.db["height"])
            record = UndoRecord(root=undo.root, entries=undo_entries(undo.old))
            txn.put(_height_key(info.height), record.encode(), db=self.db["undo"])
            self._index(txn, b, add=True)
        self._write_state(txn, touched)
        self._write_nodes(txn)
        txn.put(b"head", tip_hash, db=self.db["meta"])

    def _restore_after_failed_reorg(
        self, applied: list[tuple[Block, BlockInfo, Undo]], old_blocks: list[Block]
    ) -> None:
        for _, _, undo in reversed(applied):
            chain.revert(self.state, undo)
        for block in old_blocks:
            with self._read() as txn:
                ctx = self._context(txn, block.header.parent)
            result = chain.process_block(
                self.state, block, self.genesis, ctx, NO_CLOCK_LIMIT, self.seal
            )
            result.commit()
        if self.state.root != self.head.state_root:
            self._load()

    def _mark_invalid(self, hashes: list[bytes]) -> None:
        def write(txn: Any) -> None:
            for bh in hashes:
                info = self._info(txn, bh)
                txn.put(bh, with_status(info, STATUS_INVALID).encode(), db=self.db["info"])

        self._run_write(write)

    # ------------------------------------------------------------ checks

    def verify_consistency(self) -> None:
        """Recomputes the state root from the stored entries and checks it and
        the main-chain index against the head. Raises StoreError if not."""
        verify_consistency(self)


__all__ = ["ChainStore", "ImportResult"]
