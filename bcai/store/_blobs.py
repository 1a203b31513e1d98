"""Content-addressed blobs kept with the chain (the `blobs` database): a
MatMul job's matrices and products, named by their content id
BLAKE3("bcai/blob" ‖ bytes) (`bcai.pouw.content_id`). A blob is written once
and never changes; a read returns exactly the bytes whose id was asked for.
"""

from __future__ import annotations

from typing import Any

from bcai.pouw import content_id
from bcai.store._errors import StoreError
from bcai.store._store import ChainStore

MAX_BLOB = 1 << 30  # 1 GiB: a 16,384² int32 product is 1 GiB


def put_blob(store: ChainStore, data: bytes) -> bytes:
    """Stores `data`; returns its content id (storing it twice is a no-op)."""
    if len(data) > MAX_BLOB:
        raise StoreError("store-blob-too-large", f"{len(data)} bytes > {MAX_BLOB}")
    cid = content_id(data)

    def write(txn: Any) -> None:
        txn.put(cid, data, db=store.db["blobs"], overwrite=False)

    store._run_write(write)
    return cid


def get_blob(store: ChainStore, cid: bytes) -> bytes | None:
    """The blob named `cid`, or None. Raises ``store-corrupt`` if what is
    stored does not hash to its id."""
    with store.env.begin(buffers=False) as txn:
        data = txn.get(cid, db=store.db["blobs"])
    if data is None:
        return None
    if content_id(data) != cid:
        raise StoreError("store-corrupt", f"blob {cid.hex()} does not hash to its id")
    return bytes(data)


def blob_size(store: ChainStore, cid: bytes) -> int | None:
    with store.env.begin(buffers=True) as txn:
        data = txn.get(cid, db=store.db["blobs"])
        return None if data is None else len(data)


def read_blob_range(store: ChainStore, cid: bytes, offset: int, length: int) -> bytes | None:
    """`length` bytes of a blob from `offset` (served in chunks to peers)."""
    with store.env.begin(buffers=True) as txn:
        data = txn.get(cid, db=store.db["blobs"])
        return None if data is None else bytes(data[offset : offset + length])
