"""A node on a PoUW genesis (the devnet's default): its producer seals
blocks with proofs of useful work, and, when a MatMul job is pending and its
matrices are in the node's blob store, seals the job — the job is paid and
its product recorded and stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import pytest
import trio

from bcai import pouw
from bcai.chain import JOB_SEALED, MatMulPost
from bcai.node.genesis_file import DEVNET_POUW, dev_wallet_key
from bcai.node.service import Node
from bcai.sdk import ApiError, AsyncClient, JobInfo
from tests.node.conftest import node_config


async def test_blocks_carry_pouw_seals_and_a_job_is_sealed_and_paid(node: Node) -> None:
    store = node.runtime.store
    assert pouw.params_from_extra(store.genesis.extra) == DEVNET_POUW
    with trio.fail_after(30):
        while store.head.height < 1:
            await trio.sleep(0.05)
    seal = pouw.PouwSeal.decode(store.get_block_by_height(1).header.seal)
    assert seal.job == bytes(32) and len(seal.openings) == 2 * DEVNET_POUW.checks

    rng = np.random.default_rng(5)
    a = rng.integers(-63, 64, (128, 256)).astype(np.int8)
    b = rng.integers(-63, 64, (256, 128)).astype(np.int8)
    key = dev_wallet_key(0)
    async with AsyncClient(node.info["api"]) as client:
        # the matrices go up as blobs, by content id
        a_id = bytes.fromhex(await client.put_blob(pouw.matrix_blob(a)))
        b_id = bytes.fromhex(await client.put_blob(pouw.matrix_blob(b)))
        assert a_id == pouw.content_id(pouw.matrix_blob(a))
        assert await client.get_blob(b_id.hex()) == pouw.matrix_blob(b)
        with pytest.raises(ApiError) as err:
            await client.get_blob("00" * 32)
        assert (err.value.status, err.value.code) == (404, "blob-unknown")
        with pytest.raises(ApiError) as err:
            await client.get_blob("zz")
        assert err.value.code == "api-bad-param"
        before = (await client.account(node.producer_key.address)).balance
        post = MatMulPost(a=a_id, b=b_id, n=128, k=256, m=128, amount=777, deadline=10_000)
        sent = await client.send(key, post)
        job_id = bytes.fromhex(sent.id)
        with trio.fail_after(60):
            while (job := store.state.jobs.get(job_id)) is None or job.status != JOB_SEALED:
                await trio.sleep(0.05)
        product = await client.get_blob(job.product.hex())
        c = np.frombuffer(product, "<i4").reshape(128, 128)
        assert np.array_equal(c, a.astype(np.int64) @ b.astype(np.int64))
        assert job.solver == node.producer_key.address
        after = (await client.account(node.producer_key.address)).balance
        assert after >= before + 777


async def test_a_job_block_brings_its_blobs_to_another_node(tmp_path: Path) -> None:
    """Node b holds none of the job's blobs: before importing the gossiped
    block that seals the job, it fetches A, B and C from the sender by
    content id (blob/get), verifies the seal, and serves the product."""
    rng = np.random.default_rng(9)
    a = rng.integers(-63, 64, (128, 128)).astype(np.int8)
    b = rng.integers(-63, 64, (128, 256)).astype(np.int8)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    async with trio.open_nursery() as nursery:
        miner = Node(node_config(tmp_path / "a"))
        other = Node(node_config(tmp_path / "b", "mining.enabled=false"))
        await nursery.start(miner.run)
        await nursery.start(other.run)
        await other.runtime.host.dial("127.0.0.1", miner.info["p2p_port"])
        async with AsyncClient(miner.info["api"]) as client:
            a_id = bytes.fromhex(await client.put_blob(pouw.matrix_blob(a)))
            b_id = bytes.fromhex(await client.put_blob(pouw.matrix_blob(b)))
            post = MatMulPost(a=a_id, b=b_id, n=128, k=128, m=256, amount=55, deadline=10_000)
            sent = await client.send(dev_wallet_key(1), post)
        job_id = bytes.fromhex(sent.id)
        jobs = other.runtime.store.state.jobs
        with trio.fail_after(60):
            while (job := jobs.get(job_id)) is None or job.status != JOB_SEALED:
                await trio.sleep(0.05)
        # each of A, B and C fetched once: before the import when the block
        # came by gossip (from its sender, outside the locks), or during the
        # import when sync brought it
        rt = other.runtime
        assert rt.blobs_prefetched + rt.blobs_fetched_in_import == 3
        async with AsyncClient(other.info["api"]) as client:
            c = np.frombuffer(await client.get_blob(job.product.hex()), "<i4").reshape(128, 256)
            assert np.array_equal(c, a.astype(np.int64) @ b.astype(np.int64))
            assert await client.get_blob(a_id.hex()) == pouw.matrix_blob(a)
        await miner.shutdown()
        await other.shutdown()


def test_the_node_re_verifies_every_seal_by_default() -> None:
    """Spot checks alone can be ground at hash speed (docs/pouw.md), so the
    node re-verifies every seal in full unless told to trust old ones
    (`pouw_full_within` = N: only headers within 2·N block intervals of
    the clock, at least 30 s)."""
    from types import SimpleNamespace  # noqa: PLC0415
    from typing import Any, cast  # noqa: PLC0415

    from bcai.node.runtime import RuntimeConfig, seal_verifier  # noqa: PLC0415

    assert RuntimeConfig.pouw_full_within == 0
    assert seal_verifier(DEVNET_POUW, 1000, 0).full
    now = 10_000_000

    def header(age_ms: int) -> Any:
        return cast(Any, SimpleNamespace(timestamp_ms=now - age_ms))

    windowed = seal_verifier(DEVNET_POUW, 1000, 20, now_ms=lambda: now)  # 40 s
    assert not windowed.full and windowed.recent is not None
    assert windowed.recent(header(40_000)) and not windowed.recent(header(40_001))
    floor = seal_verifier(DEVNET_POUW, 1000, 1, now_ms=lambda: now)  # 2 s: the 30 s floor
    assert floor.recent is not None
    assert floor.recent(header(30_000)) and not floor.recent(header(30_001))
    # full checks by the host's transcript for "cpu", and where a GPU backend is not here
    assert seal_verifier(DEVNET_POUW, 1000, 0, backend="cpu").leaves_of is None
    from bcai.mining._gpu import available  # noqa: PLC0415

    on_gpu = seal_verifier(DEVNET_POUW, 1000, 0, backend="gpu")
    assert on_gpu.full and (on_gpu.leaves_of is not None) == available()


@asynccontextmanager
async def holder_and_miner(
    tmp_path: Path, *miner_settings: str
) -> AsyncIterator[tuple[Node, Node]]:
    """A node that does not mine (the user's, holding the matrices) and a
    mining one connected to it."""
    for name in ("holder", "miner"):
        (tmp_path / name).mkdir()
    async with trio.open_nursery() as nursery:
        holder = Node(node_config(tmp_path / "holder", "mining.enabled=false"))
        miner = Node(node_config(tmp_path / "miner", *miner_settings))
        await nursery.start(holder.run)
        await nursery.start(miner.run)
        await miner.runtime.host.dial("127.0.0.1", holder.info["p2p_port"])
        yield holder, miner
        await miner.shutdown()
        await holder.shutdown()


async def _until(client: AsyncClient, job_id: str, status: str, timeout: float) -> JobInfo:
    with trio.fail_after(timeout):
        while (job := await client.job(job_id)).status != status:
            await trio.sleep(0.05)
    return job


async def test_a_miner_fetches_a_pending_jobs_matrices_from_the_node_that_has_them(
    tmp_path: Path,
) -> None:
    """The user uploads A and B to a node that does not mine and posts the
    job there; the mining node, which never saw the matrices, fetches them
    from its peer by content id (a producer seals only jobs whose matrices
    it holds), seals the job and serves C."""
    rng = np.random.default_rng(17)
    a = rng.integers(-63, 64, (128, 256)).astype(np.int8)
    b = rng.integers(-63, 64, (256, 128)).astype(np.int8)
    async with holder_and_miner(tmp_path) as (holder, miner):
        async with AsyncClient(holder.info["api"]) as client:
            deadline = (await client.head()).height + 1000
            sent = await client.post_job(dev_wallet_key(0), a, b, amount=99, deadline=deadline)
            job = await _until(client, sent.id, "sealed", 60)
            assert job.solver == miner.producer_key.address.hex() and job.verify()
            assert miner.runtime.job_blobs_fetched == 2  # A and B, from the holder
            assert np.array_equal(await client.product(job), a.astype(np.int64) @ b)
        async with AsyncClient(miner.info["api"]) as client:
            assert np.array_equal(await client.product(sent.id), a.astype(np.int64) @ b)


async def test_a_miner_leaves_jobs_over_its_size_limit_and_those_it_skips(tmp_path: Path) -> None:
    """`mining.max_job_blob_bytes` below the job's matrices: the miner does
    not fetch them, and the job waits; a job in `skip` (found unsealable) is
    passed over; within the limit, both matrices come and the job is sealed."""
    rng = np.random.default_rng(19)
    a = rng.integers(-63, 64, (128, 128)).astype(np.int8)
    b = rng.integers(-63, 64, (128, 128)).astype(np.int8)
    limited = "mining.max_job_blob_bytes=16383"
    async with holder_and_miner(tmp_path, limited) as (holder, miner):
        client = AsyncClient(holder.info["api"])
        deadline = (await client.head()).height + 1000
        sent = await client.post_job(dev_wallet_key(0), a, b, amount=7, deadline=deadline)
        await _until(client, sent.id, "pending", 30)
        start = miner.runtime.store.head.height
        with trio.fail_after(30):
            while miner.runtime.store.head.height < start + 5:  # the fetcher ran meanwhile
                await trio.sleep(0.05)
        assert (await client.job(sent.id)).status == "pending"
        assert miner.runtime.job_blobs_fetched == 0
        rt = miner.runtime
        assert await rt.fetch_job_blobs(skip={bytes.fromhex(sent.id)}) == 0
        assert await rt.fetch_job_blobs(max_size=16383) == 0
        assert await rt.fetch_job_blobs(max_size=16384) == 2  # A and B: 16,384 bytes each
        job = await _until(client, sent.id, "sealed", 30)
        assert job.solver == miner.producer_key.address.hex()
        await client.aclose()
