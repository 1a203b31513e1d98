"""Dishonest seals (tests/pouw/cheats.py builds them as a cheating miner
would): at least 10,000 randomised attempts of every kind the issue names,
none accepted, each rejected with its reason code; and seals with a
fraction f of fake intermediate leaves pass the spot checks at the rate
docs/pouw.md predicts, (1 − f)^s, while full re-verification rejects them
all."""

from __future__ import annotations

import collections
import math

import numpy as np
import pytest

from bcai import pouw
from bcai.pouw import InvalidSeal
from bcai.pouw._transcript import LEAF_BYTES
from tests.pouw.cheats import KINDS, MAX_TARGET, PARAMS, commit, honest_leaves, job_work, make_case

ATTEMPTS = 10_000


def test_ten_thousand_dishonest_seals_are_all_rejected_with_their_codes() -> None:
    rng = np.random.default_rng(2026)
    codes: collections.Counter[str] = collections.Counter()
    accepted = []
    for attempt in range(ATTEMPTS):
        kind = KINDS[attempt % len(KINDS)]
        case = make_case(kind, rng)
        try:
            pouw.verify(case.prefix, MAX_TARGET, case.seal, case.work, PARAMS, case.product)
        except InvalidSeal as e:
            assert e.code in case.expected, (kind, e)
            codes[e.code] += 1
        else:
            accepted.append(kind)
    assert accepted == []
    assert sum(codes.values()) == ATTEMPTS
    assert set(codes) == {
        "pouw-freivalds",
        "pouw-spot-check",
        "pouw-final-tile",
        "pouw-range",
        "pouw-overflow",
        "pouw-merkle-path",
    }


def test_the_honest_seals_of_the_same_generator_pass() -> None:
    """The cheats differ from honest work only where they cheat."""
    rng = np.random.default_rng(7)
    for _ in range(50):
        prefix, nonce = rng.bytes(40), int(rng.integers(0, 2**63))
        work = job_work(rng)
        c = pouw.work_product(work)
        cid = pouw.content_id(pouw.matrix_blob(c))
        seal = commit(prefix, nonce, honest_leaves(prefix, nonce, work, PARAMS), work, PARAMS, cid)
        pouw.verify(prefix, MAX_TARGET, seal, work, PARAMS, c)
        pouw.full_verify(prefix, seal, work, PARAMS)


@pytest.mark.parametrize("fakes", [12, 24])  # of the 48 intermediate leaves: f = 1/4, 1/2
def test_fake_intermediate_leaves_pass_at_the_predicted_rate(fakes: int) -> None:
    trials = 1500
    rng = np.random.default_rng(fakes)
    intermediate = (PARAMS.k // PARAMS.tile - 1) * (PARAMS.n // PARAMS.tile) ** 2
    f = fakes / intermediate
    passed = 0
    for _ in range(trials):
        prefix, nonce = rng.bytes(40), int(rng.integers(0, 2**63))
        work = job_work(rng)
        leaves = honest_leaves(prefix, nonce, work, PARAMS)
        for i in rng.choice(intermediate, fakes, replace=False):
            fake = rng.bytes(LEAF_BYTES)
            while fake == leaves[i]:
                fake = rng.bytes(LEAF_BYTES)
            leaves[i] = fake
        product = pouw.work_product(work)
        seal = commit(prefix, nonce, leaves, work, PARAMS, rng.bytes(32))
        try:
            pouw.verify(prefix, MAX_TARGET, seal, work, PARAMS, product)
        except InvalidSeal as e:
            assert e.code == "pouw-spot-check"
            continue
        passed += 1
        with pytest.raises(InvalidSeal) as err:  # full re-verification catches every one
            pouw.full_verify(prefix, seal, work, PARAMS)
        assert err.value.code == "pouw-full-mismatch"
    predicted = (1 - f) ** PARAMS.checks
    sigma = math.sqrt(predicted * (1 - predicted) / trials)
    assert abs(passed / trials - predicted) < 4 * sigma, (passed / trials, predicted)


SMALL_CHEATS = ("swap-one", "duplicate-one", "omit-one", "extra-leaf")


def _small_cheat(kind: str, leaves: list[bytes], rng: np.random.Generator) -> list[bytes] | None:
    """One intermediate tile moved, copied over another or dropped (the
    slice's later tiles shifted down, its last repeated), or one leaf too
    many; None when the change would leave the transcript as it was."""
    tiles = (PARAMS.n // PARAMS.tile) * (PARAMS.m // PARAMS.tile)
    if kind == "extra-leaf":
        return [*leaves, rng.bytes(LEAF_BYTES)]
    step = int(rng.integers(0, PARAMS.k // PARAMS.tile - 1))  # an intermediate slice
    i, j = (int(x) for x in rng.choice(tiles, 2, replace=False))
    row = leaves[step * tiles : (step + 1) * tiles]
    if kind == "swap-one":
        row[i], row[j] = row[j], row[i]
    elif kind == "duplicate-one":
        row[j] = row[i]
    else:  # omit-one
        row = [*row[:i], *row[i + 1 :], row[-1]]
    changed = [*leaves[: step * tiles], *row, *leaves[(step + 1) * tiles :]]
    return None if changed == leaves else changed


def test_single_tile_cheats_are_rejected_by_full_re_verification() -> None:
    """A transcript that moves, copies or omits just one intermediate tile,
    or has one leaf too many: the spot checks catch what they open (the
    extra leaf always: every Merkle path is a tree of another size), and
    full re-verification — what nodes run on every seal — rejects every one,
    2,000 randomised attempts."""
    rng = np.random.default_rng(11)
    passed_spot: collections.Counter[str] = collections.Counter()
    tried: collections.Counter[str] = collections.Counter()
    for attempt in range(2000):
        kind = SMALL_CHEATS[attempt % len(SMALL_CHEATS)]
        prefix, nonce = rng.bytes(40), int(rng.integers(0, 2**63))
        work = job_work(rng)
        cheat = _small_cheat(kind, honest_leaves(prefix, nonce, work, PARAMS), rng)
        if cheat is None:
            continue
        tried[kind] += 1
        product = pouw.work_product(work)
        seal = commit(prefix, nonce, cheat, work, PARAMS, rng.bytes(32))
        try:
            pouw.verify(prefix, MAX_TARGET, seal, work, PARAMS, product)
        except InvalidSeal as e:
            assert e.code in {"pouw-spot-check", "pouw-merkle-path"}, (kind, e)
        else:
            passed_spot[kind] += 1
        with pytest.raises(InvalidSeal) as err:
            pouw.full_verify(prefix, seal, work, PARAMS)
        assert err.value.code == "pouw-full-mismatch"
    assert min(tried.values()) > 400
    assert passed_spot["extra-leaf"] == 0
    # the spot checks alone let single-tile cheats through: one or two wrong leaves of 48
    # pass 4 checks at (1 − 1/48)⁴ ≈ 0.92 and (1 − 2/48)⁴ ≈ 0.85; an omitted tile shifts
    # the slice's later ones (1 … 15 wrong leaves, ≈ 0.5 on average)
    assert passed_spot["duplicate-one"] > 0.85 * tried["duplicate-one"], passed_spot
    assert passed_spot["swap-one"] > 0.75 * tried["swap-one"], passed_spot
    assert 0 < passed_spot["omit-one"] < tried["omit-one"], passed_spot


def _lll(basis: list[list[int]]) -> list[list[int]]:
    """Textbook LLL (δ = 3/4) over exact rationals: small dimensions only."""
    from fractions import Fraction  # noqa: PLC0415

    b = [list(v) for v in basis]

    def dot(u: list, v: list) -> Fraction:
        return sum((Fraction(x) * y for x, y in zip(u, v, strict=True)), Fraction(0))

    def gram_schmidt() -> tuple[list[list[Fraction]], list[list[Fraction]]]:
        ortho: list[list[Fraction]] = []
        mu = [[Fraction(0)] * len(b) for _ in b]
        for i, v in enumerate(b):
            w = [Fraction(x) for x in v]
            for j in range(i):
                mu[i][j] = dot(v, ortho[j]) / dot(ortho[j], ortho[j])
                w = [x - mu[i][j] * y for x, y in zip(w, ortho[j], strict=True)]
            ortho.append(w)
        return ortho, mu

    ortho, mu = gram_schmidt()
    k = 1
    while k < len(b):
        for j in range(k - 1, -1, -1):
            q = round(mu[k][j])
            if q:
                b[k] = [x - q * y for x, y in zip(b[k], b[j], strict=True)]
                ortho, mu = gram_schmidt()
        if dot(ortho[k], ortho[k]) >= (Fraction(3, 4) - mu[k][k - 1] ** 2) * dot(
            ortho[k - 1], ortho[k - 1]
        ):
            k += 1
        else:
            b[k], b[k - 1] = b[k - 1], b[k]
            ortho, mu = gram_schmidt()
            k = max(k - 1, 1)
    return b


def test_a_product_crafted_against_a_known_ticket_fails() -> None:
    """The attack the ticket's product binding stops: with the Freivalds
    vectors known (from a ticket), an error D with D·r ≡ 0 (mod 2⁶¹ − 1) is a
    short lattice vector (LLL), and C + D would pass. Since the ticket hashes
    the product's id, posting C + D changes the vectors: Freivalds rejects."""
    from bcai.crypto import derive_key  # noqa: PLC0415

    p = (1 << 61) - 1
    params = pouw.PouwParams(tile=16, checks=2, rounds=2, n=64, k=64, m=64)
    rng = np.random.default_rng(11)
    work = job_work(rng, params)
    c = pouw.work_product(work)
    cid = pouw.content_id(pouw.matrix_blob(c))
    found = pouw.attempt(b"hdr", 3, work, params, cid)

    def vector(seed: bytes, rnd: int) -> list[int]:
        raw = derive_key(
            "bcai 2026-11 freivalds vector",
            len(seed).to_bytes(8, "big") + seed + rnd.to_bytes(4, "big"),
            8 * 64,
        )
        return [(int.from_bytes(raw[8 * i : 8 * i + 8], "little") & p) % p for i in range(64)]

    r0, r1 = vector(found.ticket, 0), vector(found.ticket, 1)
    cols = list(range(48, 54))
    a0, a1 = [r0[j] for j in cols], [r1[j] for j in cols]
    inv = pow((a0[0] * a1[1] - a0[1] * a1[0]) % p, -1, p)
    basis = [[p, 0, 0, 0, 0, 0], [0, p, 0, 0, 0, 0]]
    for j in range(2, 6):
        x0 = ((-a0[j] * a1[1] + a1[j] * a0[1]) * inv) % p
        x1 = ((-a1[j] * a0[0] + a0[j] * a1[0]) * inv) % p
        v = [x0, x1, 0, 0, 0, 0]
        v[j] = 1
        basis.append(v)
    d = min(_lll(basis), key=lambda v: max(map(abs, v)))
    assert any(d) and sum(x * y for x, y in zip(d, a0, strict=True)) % p == 0
    bad = c.copy()
    bad[5, cols] += np.array(d, dtype=np.int64).astype(np.int32)
    bad_id = pouw.content_id(pouw.matrix_blob(bad))
    # the seal the attacker must post names bad's id, which moves the ticket
    forged = pouw.attempt(b"hdr", 3, work, params, bad_id)
    seal = pouw.make_seal(b"hdr", forged, work, params, product=bad_id)
    with pytest.raises(InvalidSeal) as err:
        pouw.verify(b"hdr", MAX_TARGET, seal, work, params, bad)
    assert err.value.code in {"pouw-freivalds", "pouw-final-tile"}
