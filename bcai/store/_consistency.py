"""A stored chain checked against itself (`ChainStore.verify_consistency`):
the state root recomputed from the stored entries, and the main-chain
height index walked back from the head."""

from __future__ import annotations

from typing import TYPE_CHECKING

import bcai_native
from bcai import chain
from bcai.crypto import blake3
from bcai.store._errors import StoreError
from bcai.store._records import decode_key

if TYPE_CHECKING:
    from bcai.store._store import ChainStore


def verify_consistency(store: ChainStore) -> None:
    """Raises StoreError("store-corrupt") if the stored state does not hash
    to the head's state root or the height index is broken."""
    tree = bcai_native.SparseMerkleTree()
    with store._read() as txn:
        updates = []
        for k, v in txn.cursor(db=store.db["state"]):
            key = decode_key(bytes(k))
            updates.append((chain.tree_key(key), blake3(bytes(v))))
        head_hash = bytes(txn.get(b"head", db=store.db["meta"]))
        head = store._header(txn, head_hash)
        h = head
        while h.height > 0:
            if store._hash_at(txn, h.height) != h.block_hash():
                raise StoreError("store-corrupt", f"height index broken at {h.height}")
            h = store._header(txn, h.parent)
    root = tree.update(bytes(32), updates)
    if root != head.state_root:
        raise StoreError("store-corrupt", "stored state does not match the head's state root")
