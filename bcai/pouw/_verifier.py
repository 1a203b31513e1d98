"""The PoUW seal behind the chain's `SealVerifier` interface: a header's
`seal` field holds a `PouwSeal`.

- `verify_seal(header)` needs no state, so headers-first sync and side
  chains can run it: a seal over matrices derived from the parent is checked
  in full (spot checks, and re-verification when recent); a MatMul job's
  seal only as far as its ticket.
- `verify_job(header, job)`: the state transition calls it with the job's
  record from the parent state (so a fork sees its own jobs); the matrices
  and the posted product come through `jobs` (the node's blob store), then
  the full checks run. A blob nobody here has gives ``block-data-missing``
  (retry later, not the sender's fault); anything else ``block-bad-seal``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from bcai.chain import Header, InvalidBlock, Job
from bcai.codec import DecodeError
from bcai.pouw._errors import InvalidSeal
from bcai.pouw._params import PouwParams
from bcai.pouw._seal import AttemptLeaves, PouwSeal, full_verify, ticket, verify
from bcai.pouw._work import Work, derived_work

# (job id, the job's record, product id) -> the job's Work and its product C
JobResolver = Callable[[bytes, Job, bytes], tuple[Work, npt.NDArray[np.int32]]]
RETRYABLE = {"pouw-blob-missing"}


def decode_seal(header: Header) -> PouwSeal:
    try:
        return PouwSeal.decode(header.seal)
    except DecodeError as e:
        raise InvalidSeal("pouw-encoding", f"the seal does not decode: {e}") from e


def _as_block_error(e: InvalidSeal) -> InvalidBlock:
    code = "block-data-missing" if e.code in RETRYABLE else "block-bad-seal"
    return InvalidBlock(code, f"{e.code}: {e.message}")


class PouwSealVerifier:
    """Spot checks always; full re-verification (the whole transcript: as
    costly as one CPU attempt) of every seal with `full=True`, or of recent
    ones: with `recent(header)` given, those it calls recent (the node: a
    header's time within a few block intervals of its clock, so blocks met
    during sync get spot checks and new tips full checks); otherwise those
    within `full_within` of `tip()` (or `tip_height`)."""

    def __init__(
        self,
        params: PouwParams,
        *,
        jobs: JobResolver | None = None,
        full: bool = False,
        full_within: int = 0,
        tip: Callable[[], int] | None = None,
        recent: Callable[[Header], bool] | None = None,
        leaves_of: AttemptLeaves | None = None,
    ) -> None:
        self.params = params
        self.jobs = jobs
        self.full = full
        self.full_within = full_within
        self.tip_height = 0  # used when no `tip` is given
        self.tip = tip
        self.recent = recent
        # an attempt's leaves for full re-verification: the host's Rust transcript by
        # default; a node that mines on a GPU passes a GPU miner's (`attempt_leaves`)
        self.leaves_of = leaves_of
        self.full_checks = 0  # how many seals were re-verified in full

    def sealed_job(self, header: Header) -> tuple[bytes, bytes] | None:
        """(job id, product id) the seal claims, for the state transition."""
        seal = decode_seal(header)
        return None if seal.job == bytes(32) else (seal.job, seal.product)

    def _is_recent(self, header: Header) -> bool:
        if self.full:
            return True
        if self.recent is not None:
            return self.recent(header)
        tip = self.tip() if self.tip is not None else self.tip_height
        return self.full_within > 0 and header.height > tip - self.full_within

    def _verify(
        self, header: Header, seal: PouwSeal, work: Work, product: npt.NDArray[np.int32] | None
    ) -> None:
        prefix = header.seal_prefix()
        verify(prefix, header.target, seal, work, self.params, product)
        if self._is_recent(header):
            self.full_checks += 1
            full_verify(prefix, seal, work, self.params, self.leaves_of)

    def check(self, header: Header) -> None:
        """The stateless checks; raises InvalidSeal (with its pouw-* code)."""
        seal = decode_seal(header)
        if seal.job == bytes(32):
            self._verify(header, seal, derived_work(header.parent, self.params), None)
            return
        if seal.product == bytes(32):
            raise InvalidSeal("pouw-product", "a job's seal must name its product")
        t = ticket(header.seal_prefix(), seal.nonce, seal.root, seal.product)
        if int.from_bytes(t, "big") > header.target:
            raise InvalidSeal("pouw-ticket", "the ticket is above the target")

    def check_job(self, header: Header, job: Job) -> None:
        seal = decode_seal(header)
        if self.jobs is None:
            raise InvalidSeal("pouw-job-unknown", f"job {seal.job.hex()}: no job data here")
        work, product = self.jobs(seal.job, job, seal.product)
        self._verify(header, seal, work, product)

    def verify_seal(self, header: Header) -> None:
        try:
            self.check(header)
        except InvalidSeal as e:
            raise _as_block_error(e) from e

    def verify_job(self, header: Header, job: Job) -> None:
        try:
            self.check_job(header, job)
        except InvalidSeal as e:
            raise _as_block_error(e) from e
