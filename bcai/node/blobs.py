"""Blobs over the network by content id: peers serve `blob/get` from their
store in chunks; `fetch_blob` pulls a blob chunk by chunk from a peer and
keeps it only if it hashes to the id asked for.

Request body: content id (32 bytes) ‖ offset (u64, big-endian). Response:
total size (u64) ‖ up to CHUNK bytes from the offset. Errors: `blob-unknown`
(the peer has no such blob), `blob-bad-request`.
"""

from __future__ import annotations

import trio

from bcai.errors import BcaiError
from bcai.net import Host, RequestFailed
from bcai.pouw import content_id
from bcai.store import ChainStore, blob_size, put_blob, read_blob_range

CHUNK = 8 << 20  # under the 16 MiB response frame
METHOD = "blob/get"


class BlobError(BcaiError):
    """``blob-id-mismatch`` (a peer sent bytes that are not the blob),
    ``blob-too-large``, ``blob-bad-response``, and the peer's codes."""


def serve_blobs(host: Host, store: ChainStore) -> None:
    async def get(peer: bytes, body: bytes) -> bytes:
        if len(body) != 40:
            raise RequestFailed("blob-bad-request", "expected a content id and an offset")
        cid, offset = body[:32], int.from_bytes(body[32:], "big")
        size = await trio.to_thread.run_sync(blob_size, store, cid)
        if size is None:
            raise RequestFailed("blob-unknown", cid.hex())
        if offset > size:
            raise RequestFailed("blob-bad-request", f"offset {offset} > size {size}")
        chunk = await trio.to_thread.run_sync(read_blob_range, store, cid, offset, CHUNK)
        assert chunk is not None
        return size.to_bytes(8, "big") + chunk

    host.handle(METHOD, get)


async def fetch_blob(
    host: Host,
    peer: bytes,
    cid: bytes,
    *,
    max_size: int,
    exact: bool = False,
    timeout_s: float = 30.0,
) -> bytes:
    """The blob `cid` from `peer`, checked against its id (hashed on a
    worker thread: a job's matrix may be a gigabyte); of exactly `max_size`
    bytes when `exact` (a job's A and B: their shapes fix their sizes)."""
    parts: list[bytes] = []
    received, size = 0, None
    while size is None or received < size:
        body = await host.request(
            peer, METHOD, cid + received.to_bytes(8, "big"), timeout_s=timeout_s
        )
        if len(body) < 8:
            raise BlobError("blob-bad-response", "response shorter than its header")
        total = int.from_bytes(body[:8], "big")
        if size is None:
            if total > max_size:
                raise BlobError("blob-too-large", f"{total} bytes > {max_size}")
            if exact and total != max_size:
                raise BlobError("blob-wrong-size", f"{total} bytes, not {max_size}")
            size = total
        elif total != size:
            raise BlobError("blob-bad-response", "the blob's size changed between chunks")
        chunk = body[8:]
        if not chunk and received < size:
            raise BlobError("blob-bad-response", "an empty chunk before the end")
        parts.append(chunk)
        received += len(chunk)
    data = b"".join(parts)
    del parts
    if len(data) != size or await trio.to_thread.run_sync(content_id, data) != cid:
        raise BlobError("blob-id-mismatch", f"the bytes received are not blob {cid.hex()}")
    return data


async def fetch_and_store(
    host: Host, store: ChainStore, peer: bytes, cid: bytes, *, max_size: int, exact: bool = False
) -> bytes:
    data = await fetch_blob(host, peer, cid, max_size=max_size, exact=exact)
    await trio.to_thread.run_sync(put_blob, store, data)
    return data
