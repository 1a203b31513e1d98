"""bcai.store: the chain in LMDB (blocks, state, tree nodes, undo data,
indexes), crash-safe: one write transaction per block import or reorg.

Layer: storage. `ChainStore` is blocking; trio code uses `AsyncChainStore`.
"""

from bcai.store._async import AsyncChainStore
from bcai.store._blobs import MAX_BLOB, blob_size, get_blob, put_blob, read_blob_range
from bcai.store._errors import StoreError
from bcai.store._peers import load_addrbook, load_bans, save_addrbook, save_ban
from bcai.store._records import FORMAT_VERSION
from bcai.store._store import ChainStore, ImportResult

__all__ = [
    "FORMAT_VERSION",
    "MAX_BLOB",
    "AsyncChainStore",
    "ChainStore",
    "ImportResult",
    "StoreError",
    "blob_size",
    "get_blob",
    "load_addrbook",
    "load_bans",
    "put_blob",
    "read_blob_range",
    "save_addrbook",
    "save_ban",
]
