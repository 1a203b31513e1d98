"""MatMul jobs on the client's side: a job's post and blobs, checked as the
chain checks them before anything is uploaded, and the product's bytes
read back as C."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from bcai.chain import InvalidTransaction, MatMulPost, check_job_shape
from bcai.errors import BcaiError
from bcai.pouw import MAX_ENTRY, content_id, matrix_blob
from bcai.sdk._errors import ApiError
from bcai.sdk._types import JobInfo


class JobInputError(BcaiError):
    """Matrices a MatMul job cannot take: ``sdk-job-shape`` (not n×k and
    k×m), ``sdk-job-dtype`` (not integers), ``pouw-range`` (an entry outside
    ±63)."""


class JobFailed(BcaiError):
    """A MatMul job that did not give what was asked: ``sdk-job-not-sealed``
    (no product yet, or refunded), ``sdk-job-dropped`` (its post left the
    node's mempool unmined)."""


def matmul_job(
    a: npt.ArrayLike, b: npt.ArrayLike, *, amount: int, deadline: int
) -> tuple[MatMulPost, bytes, bytes]:
    """A MatMul job's post for C = A·B and the blobs of A and B (int8,
    row-major), checked here as the chain checks them: integer matrices
    that chain, entries within ±63 (`pouw-range`), sides multiples of 128
    (`tx-job-shape`), k small enough for exact int32 sums
    (`tx-job-overflow`), a positive amount (`tx-zero-amount`). `deadline`
    is a block height: unsealed by then, the escrow returns."""
    x, y = np.asarray(a), np.asarray(b)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[0]:
        raise JobInputError("sdk-job-shape", f"A is {x.shape} and B {y.shape}: need n×k and k×m")
    for name, matrix in (("A", x), ("B", y)):
        if not np.issubdtype(matrix.dtype, np.integer):
            raise JobInputError("sdk-job-dtype", f"{name} is {matrix.dtype}, not integers")
        if matrix.size and (int(matrix.min()) < -MAX_ENTRY or int(matrix.max()) > MAX_ENTRY):
            raise JobInputError("pouw-range", f"{name} has entries outside ±{MAX_ENTRY}")
    if amount <= 0:
        raise InvalidTransaction("tx-zero-amount", "a job must pay a positive amount")
    blob_a, blob_b = matrix_blob(x.astype(np.int8)), matrix_blob(y.astype(np.int8))
    post = MatMulPost(
        a=content_id(blob_a),
        b=content_id(blob_b),
        n=x.shape[0],
        k=x.shape[1],
        m=y.shape[1],
        amount=amount,
        deadline=deadline,
    )
    check_job_shape(post)
    return post, blob_a, blob_b


def _check_deadline(post: MatMulPost, height: int) -> None:
    if post.deadline <= height + 1:
        raise InvalidTransaction(
            "tx-job-deadline",
            f"deadline {post.deadline} is not after the next block's height {height + 1}",
        )


def _stored(got: str, blob_id: bytes) -> None:
    if got != blob_id.hex():
        raise ApiError(201, "sdk-blob-mismatch", f"the node stored {got}, expected {blob_id.hex()}")


def _product(job: JobInfo, data: bytes) -> npt.NDArray[np.int32]:
    if len(data) != 4 * job.n * job.m:
        raise ApiError(200, "sdk-blob-mismatch", f"C is {len(data)} bytes, not {job.n}×{job.m}·4")
    return np.frombuffer(data, "<i4").reshape(job.n, job.m).astype(np.int32)


def _sealed(job: JobInfo) -> str:
    if job.status != "sealed" or job.product is None:
        raise JobFailed("sdk-job-not-sealed", f"job {job.id} is {job.status}: no product")
    return job.product


def _jobs_query(status: str, poster: str | None, limit: int) -> dict[str, Any]:
    query: dict[str, Any] = {"status": status, "limit": limit}
    if poster is not None:
        query["poster"] = poster
    return query


def _jobs(doc: dict[str, Any]) -> list[JobInfo]:
    return [JobInfo.from_json(job) for job in doc["jobs"]]
