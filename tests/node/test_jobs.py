"""MatMul jobs through the API and the SDK: the job's record at
`GET /v1/jobs/{id}` (unconfirmed while its post is in the mempool, then
pending, sealed with C's content id, or refunded), its state proof, and the
SDK's `post_job` / `wait_for_job` / `product`, against a real node on a PoUW
devnet genesis (which mines and seals the job)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import trio

from bcai.chain import JOB_SEALED, InvalidTransaction, Transfer
from bcai.node.genesis_file import dev_wallet_key
from bcai.node.service import Node
from bcai.sdk import ApiError, AsyncClient, Client, JobFailed, JobInfo, JobInputError, matmul_job
from tests.node.conftest import node_config


def _matrices(seed: int, n: int, k: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(-63, 64, (n, k)), rng.integers(-63, 64, (k, m))


@pytest.mark.parametrize(
    ("a", "b", "amount", "code"),
    [
        (np.zeros((128, 128), np.int8), np.zeros((256, 128), np.int8), 1, "sdk-job-shape"),
        (np.zeros(128, np.int8), np.zeros((128, 128), np.int8), 1, "sdk-job-shape"),
        (np.zeros((128, 128)), np.zeros((128, 128), np.int8), 1, "sdk-job-dtype"),
        (np.full((128, 128), 64), np.zeros((128, 128), np.int8), 1, "pouw-range"),
        (np.zeros((128, 128), np.int8), np.full((128, 128), -64), 1, "pouw-range"),
        (np.zeros((100, 128), np.int8), np.zeros((128, 128), np.int8), 1, "tx-job-shape"),
        (np.zeros((128, 128), np.int8), np.zeros((128, 128), np.int8), 0, "tx-zero-amount"),
    ],
)
def test_a_job_the_chain_would_refuse_is_refused_before_upload(
    a: np.ndarray, b: np.ndarray, amount: int, code: str
) -> None:
    with pytest.raises((JobInputError, InvalidTransaction)) as err:
        matmul_job(a, b, amount=amount, deadline=10)
    assert err.value.code == code


def test_a_job_post_names_its_blobs_by_content() -> None:
    a, b = _matrices(1, 128, 256, 128)
    post, blob_a, blob_b = matmul_job(a, b, amount=5, deadline=99)
    assert (post.n, post.k, post.m, post.amount, post.deadline) == (128, 256, 128, 5, 99)
    assert blob_a == a.astype(np.int8).tobytes() and blob_b == b.astype(np.int8).tobytes()
    changed = b.copy()
    changed[5, 7] = -changed[5, 7] or 1  # one entry changes B's id, not A's
    other, _, _ = matmul_job(a, changed, amount=5, deadline=99)
    assert other.a == post.a and other.b != post.b


async def test_a_job_is_followed_from_post_to_product(node: Node) -> None:
    a, b = _matrices(7, 128, 256, 256)
    key = dev_wallet_key(0)
    async with AsyncClient(node.info["api"]) as client:
        deadline = (await client.head()).height + 500
        sent = await client.post_job(key, a, b, amount=321, deadline=deadline)
        # at once: unconfirmed (its post in the mempool) or already pending or sealed
        first = await client.job(sent.id)
        assert first.status in ("unconfirmed", "pending", "sealed")
        assert (first.n, first.k, first.m, first.amount, first.deadline) == (
            128,
            256,
            256,
            321,
            deadline,
        )
        assert first.poster == key.address.hex()
        with trio.fail_after(60):
            while (job := await client.job(sent.id)).status != "sealed":
                await trio.sleep(0.05)
        assert job.done and job.verify()
        assert job.solver == node.producer_key.address.hex()
        assert job.height is not None and job.height >= 1
        # the record is what the node's state holds, and the proof binds every field
        record = node.runtime.store.read_job(bytes.fromhex(sent.id))
        assert record is not None and record.status == JOB_SEALED
        assert record.product.hex() == job.product
        for change in (
            {"amount": job.amount + 1},
            {"status": "pending"},
            {"product": "00" * 32},
            {"solver": "11" * 20},
            {"poster": "22" * 20},
            {"deadline": job.deadline + 1},
        ):
            assert not dataclasses.replace(job, **change).verify(), change
        # the shape the OpenAPI document gives
        schema = (await client.openapi())["components"]["schemas"]["Job"]
        assert set(schema["required"]) <= set(job.raw) <= set(schema["properties"])
        assert set(job.raw["proof"]) == set(schema["properties"]["proof"]["required"])
        c = await client.product(job)
        assert c.dtype == np.int32 and np.array_equal(c, a @ b)
        assert np.array_equal(await client.product(sent.id), c)


async def test_job_reads_refuse_what_is_not_there(node: Node) -> None:
    async with AsyncClient(node.info["api"]) as client:
        with pytest.raises(ApiError) as err:
            await client.job("ab" * 32)
        assert (err.value.status, err.value.code) == (404, "job-unknown")
        with pytest.raises(ApiError) as err:
            await client.job("abc")
        assert (err.value.status, err.value.code) == (400, "api-bad-param")
        # a transfer's id is no job
        sent = await client.send(dev_wallet_key(1), Transfer(to=bytes(20), amount=1))
        with pytest.raises(ApiError) as err:
            await client.job(sent.id)
        assert err.value.code == "job-unknown"


async def test_a_job_no_one_can_seal_is_refunded(node: Node) -> None:
    """Posted without uploading its matrices, the job cannot be sealed (no
    miner holds A and B): once its deadline passes, the escrow returns."""
    a, b = _matrices(11, 128, 128, 128)
    key = dev_wallet_key(1)
    async with AsyncClient(node.info["api"]) as client:
        post, _, _ = matmul_job(a, b, amount=1_000, deadline=(await client.head()).height + 3)
        sent = await client.send(key, post)
        with trio.fail_after(60):
            while (job := await client.job(sent.id)).status != "refunded":
                assert job.status in ("unconfirmed", "pending")
                await trio.sleep(0.05)
        assert job.done and job.verify() and job.product is None and job.solver is None
        with pytest.raises(JobFailed) as err:
            await client.product(job)
        assert err.value.code == "sdk-job-not-sealed"


async def test_a_job_not_yet_in_a_block_is_unconfirmed(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        idle = Node(node_config(tmp_path, "mining.enabled=false"))
        await nursery.start(idle.run)
        async with AsyncClient(idle.info["api"]) as client:
            a, b = _matrices(12, 128, 128, 128)
            sent = await client.post_job(dev_wallet_key(0), a, b, amount=5, deadline=1_000)
            job = await client.job(sent.id)
            assert job.status == "unconfirmed" and not job.done
            assert job.proof is None and job.height is None and not job.verify()
            assert job.poster == dev_wallet_key(0).address.hex() and job.deadline == 1_000
        await idle.shutdown()


async def test_a_job_past_its_deadline_is_refused_before_upload(node: Node) -> None:
    a, b = _matrices(13, 128, 128, 128)
    async with AsyncClient(node.info["api"]) as client:
        height = (await client.head()).height
        with pytest.raises(InvalidTransaction) as err:
            await client.post_job(dev_wallet_key(0), a, b, amount=5, deadline=height + 1)
        assert err.value.code == "tx-job-deadline"
        post, _, _ = matmul_job(a, b, amount=5, deadline=height + 1)
        with pytest.raises(ApiError) as err:
            await client.get_blob(post.a.hex())  # nothing was uploaded
        assert err.value.code == "blob-unknown"


async def test_a_job_dropped_from_the_mempool_is_reported(tmp_path: Path) -> None:
    """`wait_for_job` on a post the node drops unmined: `sdk-job-dropped`,
    not a wait until the timeout."""
    async with trio.open_nursery() as nursery:
        idle = Node(node_config(tmp_path, "mining.enabled=false"))
        await nursery.start(idle.run)
        url = idle.info["api"]
        a, b = _matrices(14, 128, 128, 128)
        async with AsyncClient(url) as client:
            sent = await client.post_job(dev_wallet_key(0), a, b, amount=5, deadline=1_000)
        seen: list[str | None] = []

        def progress(job: JobInfo | None) -> None:
            seen.append(job.status if job else None)
            if len(seen) == 2:  # seen twice, then the node drops the post
                trio.from_thread.run_sync(idle.runtime.mempool.remove, bytes.fromhex(sent.id))

        def wait() -> str:
            with Client(url) as blocking:
                try:
                    blocking.wait_for_job(sent.id, timeout=30, poll=0.02, progress=progress)
                except JobFailed as err:
                    return err.code
            return "not raised"

        assert await trio.to_thread.run_sync(wait) == "sdk-job-dropped"
        assert seen[:2] == ["unconfirmed", "unconfirmed"] and seen[2:] == [None] * 5
        await idle.shutdown()


async def test_pending_jobs_are_listed_in_the_order_miners_take_them(node: Node) -> None:
    """Posted without their matrices (so no miner can seal them), three jobs
    wait pending: listed by payment, highest first, each saying the node
    lacks its A and B; filters by status and poster; bad queries refused."""
    key = dev_wallet_key(1)
    async with AsyncClient(node.info["api"]) as client:
        deadline = (await client.head()).height + 1000
        # another poster's better-paid job: ranks count every poster's jobs
        best, _, _ = matmul_job(*_matrices(20, 128, 128, 128), amount=5000, deadline=deadline)
        best_id = (await client.send(dev_wallet_key(0), best)).id
        ids = {}
        for seed, amount in ((21, 10), (22, 300), (23, 20)):
            post, _, _ = matmul_job(
                *_matrices(seed, 128, 128, 128), amount=amount, deadline=deadline
            )
            ids[amount] = (await client.send(key, post)).id
        mine = key.address.hex()
        with trio.fail_after(30):
            while len(listed := await client.jobs("pending", poster=mine)) < 3 or not any(
                j.id == best_id for j in await client.jobs("pending")
            ):
                await trio.sleep(0.05)
        assert [j.amount for j in listed] == [300, 20, 10]
        assert [j.id for j in listed] == [ids[300], ids[20], ids[10]]
        assert [j.raw["rank"] for j in listed] == [2, 3, 4]
        everyone = await client.jobs("pending")
        assert [j.id for j in everyone] == [best_id, ids[300], ids[20], ids[10]]
        assert all(j.status == "pending" and j.raw["blobs_here"] is False for j in listed)
        assert [j.id for j in await client.jobs("pending", poster=mine, limit=1)] == [ids[300]]
        assert await client.jobs("sealed", poster=mine) == []
        assert len(await client.jobs("all", poster=mine)) == 3
        assert len(await client.jobs("all")) == 4
        assert await client.jobs("all", poster="00" * 20) == []
        for status, poster in (("done", None), ("pending", "zz")):
            with pytest.raises(ApiError) as err:
                await client.jobs(status, poster=poster)
            assert (err.value.status, err.value.code) == (400, "api-bad-param")
