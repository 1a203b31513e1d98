"""The store for trio code: blocking LMDB work runs on worker threads, and
writes go one at a time (LMDB has one writer), so the node's event loop
never blocks on a disk sync."""

from __future__ import annotations

import trio

from bcai.chain import Account, Block, Header
from bcai.store._store import ChainStore, ImportResult


class AsyncChainStore:
    def __init__(self, store: ChainStore) -> None:
        self.store = store
        self._writer = trio.CapacityLimiter(1)

    @property
    def head(self) -> Header:
        return self.store.head

    async def import_block(self, block: Block, now_ms: int) -> ImportResult:
        return await trio.to_thread.run_sync(
            self.store.import_block, block, now_ms, limiter=self._writer
        )

    async def get_block(self, block_hash: bytes) -> Block:
        return await trio.to_thread.run_sync(self.store.get_block, block_hash)

    async def get_block_by_height(self, height: int) -> Block:
        return await trio.to_thread.run_sync(self.store.get_block_by_height, height)

    async def get_headers(self, start_height: int, count: int) -> list[Header]:
        return await trio.to_thread.run_sync(self.store.get_headers, start_height, count)

    async def get_account(self, address: bytes) -> Account:
        account, _ = await trio.to_thread.run_sync(self.store.get_account, address)
        return account
