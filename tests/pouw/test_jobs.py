"""MatMul jobs on chain: a post holds its payment in escrow, the block whose
PoUW seal computes the job is paid it (with C's content id recorded), an
unsealed job refunds after its deadline, the supply invariant holds at every
step, the store keeps jobs across a reopen; and the rejections, each with its
code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bcai import chain, pouw
from bcai.chain import (
    JOB_PENDING,
    JOB_REFUNDED,
    JOB_SEALED,
    InvalidBlock,
    InvalidTransaction,
    MatMulPost,
)
from bcai.mining import sealer
from bcai.pouw import BlobJobs, InvalidSeal, PouwParams, PouwSealVerifier, Work
from bcai.pouw._params import TILES
from bcai.store import ChainStore
from tests.chain.builder import Chain, make_genesis, make_keys

JOB_MAX_K = chain._transition.JOB_MAX_K

PARAMS = PouwParams(tile=32, checks=4, rounds=2, n=64, k=64, m=64)
EASY = (2**256 - 1) >> 3


class Setup:
    def __init__(self) -> None:
        self.keys = make_keys(3)
        self.genesis = make_genesis(self.keys, genesis_target=EASY)
        self.chain = Chain.start(self.genesis)
        self.blobs: dict[bytes, bytes] = {}
        self.verifier = PouwSealVerifier(
            PARAMS,
            jobs=BlobJobs(lambda cid, _size: self.blobs.get(cid)),
        )

    def job(self, job_id: bytes) -> chain.Job | None:
        return self.chain.state.jobs.get(job_id)

    def blob(self, matrix: np.ndarray) -> bytes:
        data = pouw.matrix_blob(matrix)
        cid = pouw.content_id(data)
        self.blobs[cid] = data
        return cid

    def post(self, a: np.ndarray, b: np.ndarray, amount: int, deadline: int) -> chain.Transaction:
        payload = MatMulPost(
            a=self.blob(a), b=self.blob(b), n=a.shape[0], k=a.shape[1], m=b.shape[1],
            amount=amount, deadline=deadline,
        )  # fmt: skip
        return self.chain.tx(self.keys[0], payload)

    def block(
        self, txs: list, producer: int = 1, job: tuple[Work, bytes] | None = None
    ) -> chain.Block:
        c = self.chain
        seal = sealer(PARAMS) if job is None else sealer(PARAMS, job=job[0], product=job[1])
        return chain.assemble_block(
            c.state, self.genesis, c.context(), txs, self.keys[producer],
            c.head.timestamp_ms + 1000, sealer=seal,
            job=None if job is None else (job[0].job, job[1]),
        )  # fmt: skip

    def import_(self, block: chain.Block) -> None:
        c = self.chain
        result = chain.process_block(
            c.state, block, self.genesis, c.context(), block.header.timestamp_ms, self.verifier
        )
        c.undos.append(result.commit())
        c.headers.append(block.header)
        c.tx_bytes.append(result.tx_bytes)
        c.blocks.append(block)
        assert c.state.supply_invariant_holds()


def matrices(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (
        rng.integers(-63, 64, (128, 256)).astype(np.int8),
        rng.integers(-63, 64, (256, 128)).astype(np.int8),
    )


def test_a_job_is_posted_sealed_and_paid(tmp_path: Path) -> None:
    s = Setup()
    a, b = matrices(1)
    poster, producer = s.keys[0].address, s.keys[1].address
    before = s.chain.state.accounts[poster].balance
    post = s.post(a, b, amount=5_000, deadline=10)
    s.import_(s.block([post]))
    job_id = post.tx_id()
    job = s.chain.state.jobs[job_id]
    assert job.status == JOB_PENDING and job.held == 5_000
    assert s.chain.state.accounts[poster].balance < before - 5_000  # escrow + fee
    # a producer computes C, stores it, and seals the job
    work = Work(a, b, job=job_id)
    c = pouw.work_product(work)
    cid = s.blob(c)
    paid_before = s.chain.state.accounts[producer].balance
    block = s.block([], producer=1, job=(work, cid))
    s.import_(block)
    job = s.chain.state.jobs[job_id]
    assert job.status == JOB_SEALED and job.product == cid and job.solver == producer
    reward = s.genesis.params.block_reward
    assert s.chain.state.accounts[producer].balance == paid_before + reward + 5_000
    assert np.array_equal(np.frombuffer(s.blobs[job.product], "<i4").reshape(128, 128), c)
    # the job cannot be sealed twice
    with pytest.raises(InvalidBlock) as err:
        s.block([], producer=2, job=(work, cid))
    assert err.value.code == "block-job-not-pending"
    # the store keeps the job across a reopen
    store = ChainStore(tmp_path / "db", s.genesis, seal=s.verifier)
    for blk in s.chain.blocks:
        store.import_block(blk, blk.header.timestamp_ms)
    store.close()
    store = ChainStore(tmp_path / "db", s.genesis, seal=s.verifier)
    assert store.state.jobs[job_id] == job
    assert store.state.supply_invariant_holds()
    store.close()


def test_an_unsealed_job_refunds_after_its_deadline() -> None:
    s = Setup()
    a, b = matrices(2)
    poster = s.keys[0].address
    post = s.post(a, b, amount=7_000, deadline=3)
    s.import_(s.block([post]))
    after_post = s.chain.state.accounts[poster].balance
    s.import_(s.block([]))  # height 2
    s.import_(s.block([]))  # height 3: the deadline, still pending
    assert s.chain.state.jobs[post.tx_id()].status == JOB_PENDING
    s.import_(s.block([]))  # height 4: refunded
    assert s.chain.state.jobs[post.tx_id()].status == JOB_REFUNDED
    assert s.chain.state.accounts[poster].balance == after_post + 7_000


def test_job_rejections_have_codes() -> None:
    s = Setup()
    a, b = matrices(3)
    with pytest.raises(InvalidBlock) as err:
        s.block([s.post(a[:, :100], b[:100], amount=1, deadline=9)])
    assert err.value.code == "tx-job-shape"
    # sides are multiples of the largest tile (128), so a side of 64 is refused
    with pytest.raises(InvalidBlock) as err:
        s.block([s.post(a[:64], b, amount=1, deadline=9)])
    assert err.value.code == "tx-job-shape"

    def check_static(k: int) -> None:
        payload = MatMulPost(a=bytes(32), b=bytes(32), n=128, k=k, m=128, amount=1, deadline=9)
        chain._transition.check_transaction_static(s.chain.tx(s.keys[0], payload), 1337)

    check_static(JOB_MAX_K)  # the largest k passes
    with pytest.raises(InvalidTransaction) as terr:
        check_static(JOB_MAX_K + 128)
    assert terr.value.code == "tx-job-overflow"
    with pytest.raises(InvalidBlock) as err:
        s.block([s.post(a, b, amount=1, deadline=1)])
    assert err.value.code == "tx-job-deadline"
    post = s.post(a, b, amount=10, deadline=9)
    s.import_(s.block([post]))
    work = Work(a, b, job=post.tx_id())
    # a wrong product (the job claimed but not computed): Freivalds
    wrong = pouw.work_product(work)
    wrong[0, 0] += 1
    block = s.block([], job=(work, s.blob(wrong)))
    with pytest.raises(InvalidBlock, match="pouw-freivalds"):
        s.import_(block)
    # a product blob nobody has: not a verdict on the block (retry later)
    block = s.block([], job=(work, b"\x01" * 32))
    with pytest.raises(InvalidBlock, match="pouw-blob-missing") as err:
        s.import_(block)
    assert err.value.code == "block-data-missing"
    # a job that does not exist
    ghost = Work(a, b, job=b"\x02" * 32)
    with pytest.raises(InvalidBlock) as err:
        s.block([], job=(ghost, s.blob(pouw.work_product(ghost))))
    assert err.value.code == "block-job-not-pending"
    # matrices outside 7 bits: the job can never be sealed
    a_bad = a.copy()
    a_bad[0, 0] = 100
    post = s.post(a_bad, b, amount=10, deadline=9)
    s.import_(s.block([post]))
    bad = Work(a_bad, b, job=post.tx_id())
    with pytest.raises(InvalidSeal) as serr:
        pouw.check_work(bad, PARAMS)
    assert serr.value.code == "pouw-range"
    assert s.chain.state.jobs[post.tx_id()].status == JOB_PENDING


def test_job_data_rejections_have_codes() -> None:
    """What a job's seal is checked against, refused each with its code: a
    blob whose bytes do not hash to its id, a blob of the wrong size for the
    job's shape, a verifier with no job data at all, B outside 7 bits."""
    s = Setup()
    a, b = matrices(4)
    post = s.post(a, b, amount=10, deadline=9)
    s.import_(s.block([post]))
    job_id = post.tx_id()
    job = s.job(job_id)
    assert job is not None
    work = Work(a, b, job=job_id)
    product = s.blob(pouw.work_product(work))
    forged = dict(s.blobs)
    forged[job.post.a] = pouw.matrix_blob(a[::-1])  # other bytes under A's id
    with pytest.raises(InvalidSeal) as err:
        BlobJobs(lambda cid, _size: forged.get(cid))(job_id, job, product)
    assert err.value.code == "pouw-blob-id"
    short = pouw.matrix_blob(a[:64])  # A's first rows only, stored under their own id
    job_short = chain.Job(
        post=MatMulPost(
            a=pouw.content_id(short), b=job.post.b, n=128, k=256, m=128, amount=10, deadline=9
        ),
        **{name: getattr(job, name) for name in ("poster", "status", "product", "solver")},
    )
    sized = dict(s.blobs) | {pouw.content_id(short): short}
    with pytest.raises(InvalidSeal) as err:
        BlobJobs(lambda cid, _size: sized.get(cid))(job_id, job_short, product)
    assert err.value.code == "pouw-blob-size"
    assert BlobJobs(lambda cid, _size: s.blobs.get(cid))(job_id, job, product)[0].a.shape == a.shape
    block = s.block([], job=(work, product))
    with pytest.raises(InvalidSeal) as err:
        PouwSealVerifier(PARAMS).check_job(block.header, job)  # a node without job data
    assert err.value.code == "pouw-job-unknown"
    s.verifier.check_job(block.header, job)  # with it: the seal is good
    b_bad = b.copy()
    b_bad[-1, -1] = -64
    with pytest.raises(InvalidSeal) as err:
        pouw.check_work(Work(a, b_bad), PARAMS)
    assert err.value.code == "pouw-range"


def test_job_sides_fit_every_tile() -> None:
    """Every PoUW tile divides a job's sides, and the largest k is the
    largest multiple of the largest tile within the kernels' MAX_K."""
    assert chain._transition.JOB_SIDE_MULTIPLE == max(TILES) == 128
    assert JOB_MAX_K == 130_944 == pouw.MAX_K // 128 * 128
