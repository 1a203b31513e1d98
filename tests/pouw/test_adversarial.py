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
        seal = commit(
            prefix, nonce, honest_leaves(prefix, nonce, work, PARAMS), work, PARAMS, bytes(32)
        )
        pouw.verify(prefix, MAX_TARGET, seal, work, PARAMS, pouw.work_product(work))
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
            fake = rng.bytes(8)
            while fake == leaves[i]:
                fake = rng.bytes(8)
            leaves[i] = fake
        seal = commit(prefix, nonce, leaves, work, PARAMS, bytes(32))
        product = pouw.work_product(work)
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
