"""The PoUW seal behind the chain's `SealVerifier` interface: a header's
`seal` field holds a `PouwSeal`; matrices derive from the parent hash, or
come from a MatMul job through `jobs` (the node's resolver: job id → the
job's Work and its posted product)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from bcai.chain import Header, InvalidBlock
from bcai.codec import DecodeError
from bcai.pouw._errors import InvalidSeal
from bcai.pouw._params import PouwParams
from bcai.pouw._seal import PouwSeal, full_verify, verify
from bcai.pouw._work import Work, derived_work

JobResolver = Callable[[bytes, bytes], tuple[Work, npt.NDArray[np.int32]]]


def decode_seal(header: Header) -> PouwSeal:
    try:
        return PouwSeal.decode(header.seal)
    except DecodeError as e:
        raise InvalidSeal("pouw-encoding", f"the seal does not decode: {e}") from e


class PouwSealVerifier:
    """Spot checks always; full re-verification (the whole transcript: as
    costly as one mining attempt) of every seal with `full=True`, or of the
    recent ones with `full_within=N`: headers above `tip() − N`, where the
    node's `tip` gives its head's height (old blocks met during sync are
    spot-checked; new tips, the ones producers build on, in full)."""

    def __init__(
        self,
        params: PouwParams,
        *,
        jobs: JobResolver | None = None,
        full: bool = False,
        full_within: int = 0,
        tip: Callable[[], int] | None = None,
    ) -> None:
        self.params = params
        self.jobs = jobs
        self.full = full
        self.full_within = full_within
        self.tip_height = 0  # used when no `tip` is given
        self.tip = tip
        self.full_checks = 0  # how many seals were re-verified in full

    def work_of(self, header: Header, seal: PouwSeal) -> tuple[Work, npt.NDArray[np.int32] | None]:
        if seal.job == bytes(32):
            return derived_work(header.parent, self.params), None
        if self.jobs is None:
            raise InvalidSeal("pouw-job-unknown", f"job {seal.job.hex()}: no job resolver here")
        return self.jobs(seal.job, seal.product)

    def sealed_job(self, header: Header) -> tuple[bytes, bytes] | None:
        """(job id, product id) the seal claims, for the state transition."""
        seal = decode_seal(header)
        return None if seal.job == bytes(32) else (seal.job, seal.product)

    def check(self, header: Header) -> None:
        """Raises InvalidSeal (with its pouw-* code)."""
        seal = decode_seal(header)
        work, product = self.work_of(header, seal)
        prefix = header.seal_prefix()
        verify(prefix, header.target, seal, work, self.params, product)
        tip = self.tip() if self.tip is not None else self.tip_height
        recent = self.full_within > 0 and header.height > tip - self.full_within
        if self.full or recent:
            self.full_checks += 1
            full_verify(prefix, seal, work, self.params)

    def verify_seal(self, header: Header) -> None:
        try:
            self.check(header)
        except InvalidSeal as e:
            raise InvalidBlock("block-bad-seal", f"{e.code}: {e.message}") from e
