"""Honest and dishonest seals for the PoUW tests: a cheat builds its own
transcript (a list of leaves), commits to it with a real Merkle tree and
opens the positions its own ticket picks, exactly as a dishonest miner
would; only the verifier decides."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import bcai_native
from bcai import pouw
from bcai.crypto import merkle_root_packed
from bcai.pouw import Opening, PouwParams, PouwSeal, Work
from bcai.pouw._noise import Noise, Seed, attempt_seed, noisy
from bcai.pouw._transcript import LEAF_BYTES

MAX_TARGET = 2**256 - 1
PARAMS = PouwParams(tile=4, checks=4, rounds=2, n=16, k=16, m=16)


@dataclass
class Case:
    prefix: bytes
    seal: PouwSeal
    work: Work
    product: np.ndarray | None
    expected: set[str]


def honest_leaves(prefix: bytes, nonce: int, work: Work, params: PouwParams) -> list[bytes]:
    leaves = pouw.attempt(prefix, nonce, work, params).leaves  # leaves do not depend on C
    return [leaves[i : i + LEAF_BYTES] for i in range(0, len(leaves), LEAF_BYTES)]


def commit(
    prefix: bytes,
    nonce: int,
    leaves: list[bytes],
    work: Work,
    params: PouwParams,
    job_product: bytes,
) -> PouwSeal:
    """The seal a miner with these leaves would publish."""
    root = merkle_root_packed(b"".join(leaves), LEAF_BYTES)
    t = pouw.ticket(prefix, nonce, root, job_product)
    openings = tuple(
        Opening(leaves[i], tuple(bcai_native.merkle_proof(leaves, i)))
        for i in pouw.challenges(t, *work.shape, params)
    )
    return PouwSeal(nonce, work.job, job_product, root, openings)


def job_work(rng: np.random.Generator, params: PouwParams = PARAMS) -> Work:
    a = rng.integers(-63, 64, (params.n, params.k)).astype(np.int8)
    b = rng.integers(-63, 64, (params.k, params.m)).astype(np.int8)
    return Work(a, b, job=rng.bytes(32))


def per_slice(leaves: list[bytes], params: PouwParams) -> list[list[bytes]]:
    tiles = (params.n // params.tile) * (params.m // params.tile)
    return [leaves[i : i + tiles] for i in range(0, len(leaves), tiles)]


def derangement(rng: np.random.Generator, size: int) -> np.ndarray:
    while True:
        p = rng.permutation(size)
        if not (p == np.arange(size)).any():
            return p


# the cheats in the transcript itself: caught by the spot and final checks
TRANSCRIPT_KINDS = (
    "reorder",
    "duplicate",
    "omit",
    "foreign-noise",
    "neighbour-noise",
    "neighbour-transcript",
    "copied",
    "fake-all",
)


def other_noise_leaves(
    neighbour: bool,
    rng: np.random.Generator,
    prefix: bytes,
    nonce: int,
    work: Work,
    params: PouwParams,
) -> list[bytes]:
    """A transcript with this nonce's digest keys over noise not from this
    header (random side seeds) or a neighbouring nonce's (one side the same,
    the other the neighbour's)."""
    n, k, m = work.shape
    own = attempt_seed(prefix, nonce)
    if neighbour:
        seed = attempt_seed(prefix, nonce + 1 if nonce == 0 else nonce + int(rng.choice([-1, 1])))
    else:
        seed = Seed(own.attempt, rng.bytes(32), rng.bytes(32))
    assert (seed.e == own.e) + (seed.f == own.f) == int(neighbour)
    a2, b2 = noisy(work.a, work.b, Noise.derive(seed, n, k, m, params.tile))
    raw = pouw.transcript(a2, b2, params.tile, pouw.digest_key(own))
    return [raw[i : i + LEAF_BYTES] for i in range(0, len(raw), LEAF_BYTES)]


def make_case(kind: str, rng: np.random.Generator, params: PouwParams = PARAMS) -> Case:
    prefix = rng.bytes(40)
    nonce = int(rng.integers(0, 2**63))
    work = job_work(rng, params)
    c = pouw.work_product(work)
    cid = rng.bytes(32)
    leaves = honest_leaves(prefix, nonce, work, params)
    if kind == "wrong-product":
        bad = c.copy()
        i, j = rng.integers(0, params.n), rng.integers(0, params.m)
        bad[i, j] += int(rng.choice([-1, 1]) * rng.integers(1, 1000))
        return Case(
            prefix, commit(prefix, nonce, leaves, work, params, cid), work, bad, {"pouw-freivalds"}
        )
    if kind == "not-computed":
        guess = rng.integers(-(2**20), 2**20, c.shape).astype(np.int32)
        return Case(
            prefix,
            commit(prefix, nonce, leaves, work, params, cid),
            work,
            guess,
            {"pouw-freivalds"},
        )
    if kind == "reorder":
        order = derangement(rng, len(per_slice(leaves, params)[0]))
        leaves = [s[int(o)] for s in per_slice(leaves, params) for o in order]
    elif kind == "duplicate":
        first = per_slice(leaves, params)[0]
        leaves = first * (len(leaves) // len(first))
    elif kind == "omit":
        slices = per_slice(leaves, params)
        leaves = [x for s in slices[:-1] for x in s] + slices[-2]
    elif kind == "neighbour-transcript":  # a neighbouring nonce's whole honest transcript
        other = nonce + 1 if nonce == 0 else nonce + int(rng.choice([-1, 1]))
        leaves = honest_leaves(prefix, other, work, params)
    elif kind in ("foreign-noise", "neighbour-noise"):
        leaves = other_noise_leaves(kind == "neighbour-noise", rng, prefix, nonce, work, params)
    elif kind == "copied":
        other = rng.bytes(40)
        seal = commit(other, nonce, honest_leaves(other, nonce, work, params), work, params, cid)
        return Case(
            prefix, seal, work, c, {"pouw-spot-check", "pouw-final-tile", "pouw-merkle-path"}
        )
    elif kind == "fake-all":
        leaves = [rng.bytes(LEAF_BYTES) for _ in leaves]
    elif kind == "range":
        a = work.a.copy()
        a[rng.integers(0, params.n), rng.integers(0, params.k)] = int(
            rng.choice([64, 127, -64, -128])
        )
        bad = Work(a, work.b, work.job)
        return Case(
            prefix, commit(prefix, nonce, leaves, work, params, cid), bad, c, {"pouw-range"}
        )
    elif kind == "overflow":
        k = pouw.MAX_K + 1 + (-(pouw.MAX_K + 1)) % params.tile
        big = Work(
            np.zeros((params.tile, k), np.int8), np.zeros((k, params.tile), np.int8), work.job
        )
        return Case(
            prefix, commit(prefix, nonce, leaves, work, params, cid), big, None, {"pouw-overflow"}
        )
    elif kind == "bad-path":
        seal = commit(prefix, nonce, leaves, work, params, cid)
        opening = seal.openings[0]
        path = list(opening.path)
        path[int(rng.integers(0, len(path)))] = rng.bytes(32)
        seal = PouwSeal(
            seal.nonce,
            seal.job,
            seal.product,
            seal.root,
            (Opening(opening.leaf, tuple(path)), *seal.openings[1:]),
        )
        return Case(prefix, seal, work, c, {"pouw-merkle-path"})
    else:
        raise ValueError(kind)
    assert kind in TRANSCRIPT_KINDS
    seal = commit(prefix, nonce, leaves, work, params, cid)
    return Case(prefix, seal, work, c, {"pouw-spot-check", "pouw-final-tile"})


KINDS = ["wrong-product", "not-computed", *TRANSCRIPT_KINDS, "range", "overflow", "bad-path"]
