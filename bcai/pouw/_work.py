"""The matrices a seal multiplies: a MatMul job's A and B (7-bit signed
entries, checked), or, when no job is pending, matrices derived from the
parent hash so that the chain never stalls."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bcai.crypto import blake3, blake3_xof, derive_key
from bcai.pouw._errors import InvalidSeal
from bcai.pouw._params import MAX_ENTRY, PouwParams, check_shape

I8 = npt.NDArray[np.int8]


@dataclass(frozen=True)
class Work:
    """A (n×k), B (k×m); `job` names a MatMul job (32 zero bytes: derived).
    A value: its matrices are not to change once it is made (their 7-bit
    range is checked once a Work, their digest names the CPU miner's kept
    noisy operands, the GPU miner keeps copies on the device) — they are
    made read-only here, so that a write through them fails; new matrices
    make a new Work (a view made writeable before stays so: don't)."""

    a: I8
    b: I8
    job: bytes = bytes(32)

    def __post_init__(self) -> None:
        for matrix in (self.a, self.b):
            if isinstance(matrix, np.ndarray) and matrix.flags.writeable:
                matrix.setflags(write=False)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.a.shape[0], self.a.shape[1], self.b.shape[1]


def derived_matrix(parent: bytes, which: str, rows: int, cols: int) -> I8:
    """Entries in [−63, 63]: XOF bytes of BLAKE3 keyed by the parent hash,
    each reduced mod 127 (bias < 1%, irrelevant to the work)."""
    key = derive_key(f"bcai 2026-11 pouw derived {which}", parent)
    raw = np.frombuffer(blake3_xof(key, rows * cols), dtype=np.uint8)
    return ((raw % 127).astype(np.int16) - MAX_ENTRY).astype(np.int8).reshape(rows, cols)


def derived_work(parent: bytes, params: PouwParams) -> Work:
    return Work(
        derived_matrix(parent, "A", params.n, params.k),
        derived_matrix(parent, "B", params.k, params.m),
    )


# Works whose entries were found within ±MAX_ENTRY: a scan of A and B costs ≈ 6 ms at n = 4096
# and `mine` checks its work at every call (once a block; a benchmark's rounds, many)
_in_range: weakref.WeakValueDictionary[int, Work] = weakref.WeakValueDictionary()


# Works' digests (`work_digest`) by id, each with a weak reference to its Work
_digests: dict[int, tuple[weakref.ref[Work], bytes]] = {}


def work_digest(work: Work) -> bytes:
    """BLAKE3 of A's and B's shapes and entries, computed once a Work (a
    value: its matrices do not change) — what names the matrices in the
    tokens under which the CPU miner keeps a noisy operand that repeats
    (`bcai.pouw._seal.side_tokens`)."""
    held = _digests.get(id(work))
    if held is not None and held[0]() is work:
        return held[1]
    a, b = np.ascontiguousarray(work.a), np.ascontiguousarray(work.b)
    digest = blake3(b"%d %d %d %d " % (*a.shape, *b.shape) + a.tobytes() + b.tobytes())
    key = id(work)

    def forget(ref: weakref.ref[Work]) -> None:  # the Work is gone: its id may come again
        if _digests.get(key, (None, b""))[0] is ref:
            del _digests[key]

    _digests[key] = (weakref.ref(work, forget), digest)
    return digest


def check_work(work: Work, params: PouwParams) -> None:
    """Raises ``pouw-shape``, ``pouw-overflow`` or ``pouw-range``."""
    a, b = work.a, work.b
    if a.ndim != 2 or b.ndim != 2 or a.dtype != np.int8 or b.dtype != np.int8:
        raise InvalidSeal("pouw-shape", "A and B must be 2-D int8 matrices")
    if a.shape[1] != b.shape[0]:
        raise InvalidSeal("pouw-shape", f"A is {a.shape}, B is {b.shape}: they do not chain")
    check_shape(params, *work.shape)
    if _in_range.get(id(work)) is work:
        return
    for name, x in (("A", a), ("B", b)):
        if x.size and (int(x.min()) < -MAX_ENTRY or int(x.max()) > MAX_ENTRY):
            raise InvalidSeal("pouw-range", f"{name} has entries outside ±{MAX_ENTRY}")
    _in_range[id(work)] = work
