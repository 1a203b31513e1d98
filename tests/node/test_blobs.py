"""Blobs by content id between two real hosts (TCP on 127.0.0.1, LMDB on
disk): a multi-chunk blob arrives intact and is stored; an unknown id, a
peer that sends other bytes, and a blob over the size limit are refused with
their codes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trio

from bcai import pouw
from bcai.net import Host, NodeKeys, RequestFailed
from bcai.node.blobs import CHUNK, METHOD, BlobError, fetch_and_store, fetch_blob, serve_blobs
from bcai.store import ChainStore, get_blob, put_blob
from tests.chain.builder import make_genesis, make_keys
from tests.net.cluster import CONFIG

GENESIS = make_genesis(make_keys(1))


async def test_blobs_travel_by_content_id(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    product = rng.integers(-(2**30), 2**30, (1200, 2000)).astype(np.int32)  # 9.6 MB: 2 chunks
    data = pouw.matrix_blob(product)
    assert len(data) > CHUNK
    a_store, b_store = ChainStore(tmp_path / "a", GENESIS), ChainStore(tmp_path / "b", GENESIS)
    cid = put_blob(a_store, data)
    assert cid == pouw.content_id(data) and put_blob(a_store, data) == cid
    a = Host(NodeKeys.generate(), a_store.genesis_id, CONFIG)
    b = Host(NodeKeys.generate(), b_store.genesis_id, CONFIG)
    serve_blobs(a, a_store)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(a.run)
        await nursery.start(b.run)
        peer = await b.dial("127.0.0.1", port)
        got = await fetch_and_store(b, b_store, peer, cid, max_size=64 << 20)
        assert got == data and get_blob(b_store, cid) == data
        assert np.array_equal(np.frombuffer(got, "<i4").reshape(product.shape), product)
        with pytest.raises(RequestFailed) as err:
            await fetch_blob(b, peer, b"\x00" * 32, max_size=1 << 20)
        assert err.value.code == "blob-unknown"
        with pytest.raises(BlobError) as berr:
            await fetch_blob(b, peer, cid, max_size=1 << 20)
        assert berr.value.code == "blob-too-large"
        with pytest.raises(BlobError) as berr:  # a job's A or B has its shape's size exactly
            await fetch_blob(b, peer, cid, max_size=len(data) + 1, exact=True)
        assert berr.value.code == "blob-wrong-size"
        assert await fetch_blob(b, peer, cid, max_size=len(data), exact=True) == data

        async def liar(_peer: bytes, body: bytes) -> bytes:
            return (5).to_bytes(8, "big") + b"wrong"

        a.handle(METHOD, liar)
        with pytest.raises(BlobError) as berr:
            await fetch_blob(b, peer, cid, max_size=1 << 20)
        assert berr.value.code == "blob-id-mismatch"
        nursery.cancel_scope.cancel()
    a_store.close()
    b_store.close()
