"""MatMul jobs as a seal verifier sees them: a job's record (from the
chain state) and its matrices and product (from the blob store), each blob
named by its content id BLAKE3("bcai/blob" ‖ bytes).

Blob layouts: A and B are n·k and k·m int8 bytes, row-major; C is n·m int32
little-endian, row-major.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from bcai.chain import Job
from bcai.crypto import blake3
from bcai.pouw._errors import InvalidSeal
from bcai.pouw._work import Work


def content_id(data: bytes) -> bytes:
    return blake3(b"bcai/blob" + data)


def matrix_blob(matrix: npt.NDArray[np.int8] | npt.NDArray[np.int32]) -> bytes:
    """The blob of a matrix (int8, or int32 stored little-endian)."""
    if matrix.dtype == np.int32:
        return np.ascontiguousarray(matrix, dtype="<i4").tobytes()
    return np.ascontiguousarray(matrix, dtype=np.int8).tobytes()


def _read(
    raw: bytes | None, blob: bytes, rows: int, cols: int, dtype: str
) -> npt.NDArray[np.generic]:
    if raw is None:
        raise InvalidSeal("pouw-blob-missing", f"blob {blob.hex()} is not here")
    if content_id(raw) != blob:
        raise InvalidSeal("pouw-blob-id", f"blob {blob.hex()} does not hash to its id")
    size = rows * cols * np.dtype(dtype).itemsize
    if len(raw) != size:
        raise InvalidSeal("pouw-blob-size", f"blob {blob.hex()}: {len(raw)} bytes, expected {size}")
    return np.frombuffer(raw, dtype=dtype).reshape(rows, cols)


class BlobJobs:
    """A `JobResolver` for `PouwSealVerifier`: `blob(id, size)` gives a
    blob's bytes (None when absent; `size` is what the job's shape says it
    must be, so a node may fetch it from peers)."""

    def __init__(self, blob: Callable[[bytes, int], bytes | None]) -> None:
        self.blob = blob

    def __call__(
        self, job_id: bytes, job: Job, product: bytes
    ) -> tuple[Work, npt.NDArray[np.int32]]:
        post = job.post
        a = _read(self.blob(post.a, post.n * post.k), post.a, post.n, post.k, "i1")
        b = _read(self.blob(post.b, post.k * post.m), post.b, post.k, post.m, "i1")
        c = _read(self.blob(product, 4 * post.n * post.m), product, post.n, post.m, "<i4")
        return (
            Work(a.astype(np.int8), b.astype(np.int8), job=job_id),
            c.astype(np.int32),
        )
