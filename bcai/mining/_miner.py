"""The mining loop: for each nonce, noise from the header, the transcript on
a backend, its Merkle root and the ticket; the first ticket at or below the
target becomes a seal."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

import bcai_native
from bcai.chain import Header
from bcai.crypto import merkle_root_packed
from bcai.pouw import (
    Attempt,
    PouwParams,
    PouwSeal,
    Work,
    check_work,
    derived_work,
    make_seal,
    ticket,
)
from bcai.pouw._errors import InvalidSeal
from bcai.pouw._noise import Seed, attempt_seed
from bcai.pouw._seal import host_attempt_leaves
from bcai.pouw._transcript import LEAF_BYTES

I8 = npt.NDArray[np.int8]


class Miner(Protocol):
    name: str

    def leaves(self, a2: I8, b2: I8, tile: int, key: int) -> bytes:
        """The transcript's leaves of A' and B'."""

    def attempt_leaves(self, work: Work, seed: Seed, params: PouwParams) -> bytes:
        """The leaves of one attempt: noise from `seed`, then the transcript."""


class CpuMiner:
    """Rust, one rayon task per output tile, all cores. With AVX2 and b a
    multiple of 16 the whole attempt after the noise factors (noise
    products, noisy operands, transcript) is one native call on the
    register-blocked `vpmaddwd` kernel; otherwise NumPy builds A', B' and
    the portable kernel runs."""

    name = "cpu"

    def leaves(self, a2: I8, b2: I8, tile: int, key: int) -> bytes:
        return bcai_native.pouw_transcript(a2, np.ascontiguousarray(b2.T), tile=tile, key=key)

    def attempt_leaves(self, work: Work, seed: Seed, params: PouwParams) -> bytes:
        return host_attempt_leaves(work, seed, params)


def _gpu() -> Miner:
    from bcai.mining._gpu import GpuMiner  # noqa: PLC0415 - CuPy is the `gpu` extra

    return GpuMiner()


def _gpu_kernel(sm90: bool) -> Callable[[], Miner]:
    def make() -> Miner:
        from bcai.mining._gpu import GpuMiner  # noqa: PLC0415 - CuPy is the `gpu` extra

        return GpuMiner(sm90=sm90)

    return make


# gpu: the hand-written Hopper transcript kernel where it runs, else Triton's;
# gpu-sm90 / gpu-triton: that kernel only
MINERS: dict[str, Callable[[], Miner]] = {
    "cpu": CpuMiner,
    "gpu": _gpu,
    "gpu-sm90": _gpu_kernel(True),
    "gpu-triton": _gpu_kernel(False),
}


def new_miner(name: str = "cpu") -> Miner:
    if name not in MINERS:
        raise InvalidSeal("pouw-miner-unknown", f"{name!r}: one of {', '.join(MINERS)}")
    return MINERS[name]()


@dataclass
class MiningStats:
    attempts: int = 0
    seconds: float = 0.0
    ops: int = 0  # 2 per useful multiply-add of the noisy product
    durations: list[float] = field(default_factory=list)

    @property
    def attempts_per_s(self) -> float:
        return self.attempts / self.seconds if self.seconds else 0.0


def run_attempt(
    prefix: bytes,
    nonce: int,
    work: Work,
    params: PouwParams,
    miner: Miner,
    product: bytes = bytes(32),
) -> Attempt:
    seed = attempt_seed(prefix, nonce)
    launch = getattr(miner, "launch", None)
    root: bytes | None = None
    if launch is None:
        leaves = miner.attempt_leaves(work, seed, params)
    else:  # the GPU may have built the Merkle tree too
        leaves, root = miner.finish(launch(work, seed, params))  # type: ignore[attr-defined]
    if root is None:
        root = merkle_root_packed(leaves, LEAF_BYTES)
    return Attempt(nonce, leaves, root, ticket(prefix, nonce, root, product))


def mine(
    prefix: bytes,
    target: int,
    work: Work,
    params: PouwParams,
    *,
    miner: Miner | None = None,
    start: int = 0,
    attempts: int | None = None,
    product: bytes = bytes(32),
    stats: MiningStats | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> PouwSeal | None:
    """Tries nonces from `start` until a ticket meets `target` (a seal), or
    `attempts` run out / `should_stop()` says so (None)."""
    check_work(work, params)
    miner = miner or CpuMiner()
    stats = stats if stats is not None else MiningStats()
    n, k, m = work.shape
    end = None if attempts is None else start + attempts
    launch = getattr(miner, "launch", None)
    # a GPU miner keeps `depth` attempts in flight (one per stream, or a pipeline's): the
    # next ones run while this one ends
    depth_for = getattr(miner, "depth_for", None)
    depth = depth_for(work, params) if depth_for is not None else getattr(miner, "depth", 1)
    depth = depth if launch is not None else 0
    queued: collections.deque[tuple[int, Any]] = collections.deque()
    following = start  # the next nonce to launch

    def top_up(limit: int) -> None:
        nonlocal following
        while launch is not None and len(queued) < limit and (end is None or following < end):
            queued.append((following, launch(work, attempt_seed(prefix, following), params)))
            following += 1

    nonce = start
    top_up(depth)
    began = time.perf_counter()
    while end is None or nonce < end:
        if should_stop is not None and should_stop():
            return None
        if not queued:
            found = run_attempt(prefix, nonce, work, params, miner, product)
        else:
            launched_nonce, current = queued.popleft()
            assert launched_nonce == nonce
            top_up(depth - 1)  # with the current one, `depth` in flight: no stream reused early
            leaves, root = miner.finish(current)  # type: ignore[attr-defined]
            if root is None:  # the device did not build the tree
                root = merkle_root_packed(leaves, LEAF_BYTES)
            found = Attempt(nonce, leaves, root, ticket(prefix, nonce, root, product))
        now = time.perf_counter()
        spent, began = now - began, now
        stats.attempts += 1
        stats.seconds += spent
        stats.durations.append(spent)
        stats.ops += 2 * n * k * m
        if int.from_bytes(found.ticket, "big") <= target:
            return make_seal(prefix, found, work, params, product)
        nonce += 1
    return None


def sealer(
    params: PouwParams,
    miner: Miner | None = None,
    stats: MiningStats | None = None,
    *,
    job: Work | None = None,
    product: bytes = bytes(32),
) -> Callable[[Header], bytes]:
    """A `sealer` for `bcai.chain.assemble_block`: mines a PoUW seal (the
    encoded `PouwSeal`) over a MatMul job's matrices (`job`, with the content
    id of its product), or over those derived from the header's parent."""

    def seal(header: Header) -> bytes:
        work = job if job is not None else derived_work(header.parent, params)
        found = mine(
            header.seal_prefix(),
            header.target,
            work,
            params,
            miner=miner,
            stats=stats,
            product=product,
        )
        assert found is not None  # unbounded attempts
        return found.encode()

    return seal
