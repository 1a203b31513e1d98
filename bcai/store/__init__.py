"""bcai.store: the chain in LMDB (blocks, state, tree nodes, undo data,
indexes), crash-safe: one write transaction per block import or reorg.

Layer: storage. `ChainStore` is blocking; trio code uses `AsyncChainStore`.
"""

from bcai.store._async import AsyncChainStore
from bcai.store._errors import StoreError
from bcai.store._peers import load_addrbook, load_bans, save_addrbook, save_ban
from bcai.store._records import FORMAT_VERSION
from bcai.store._store import ChainStore, ImportResult

__all__ = [
    "FORMAT_VERSION",
    "AsyncChainStore",
    "ChainStore",
    "ImportResult",
    "StoreError",
    "load_addrbook",
    "load_bans",
    "save_addrbook",
    "save_ban",
]
