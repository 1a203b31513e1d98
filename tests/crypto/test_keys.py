"""bcai.crypto's public names: keys, addresses, signatures, batch verification."""

from __future__ import annotations

import blake3 as blake3_pkg
from hypothesis import given, settings
from hypothesis import strategies as st

from bcai import crypto

KEYS = [crypto.PrivateKey(bytes([i]) * 32) for i in range(8)]


def test_public_surface() -> None:
    key = crypto.PrivateKey.generate()
    assert len(key.public_key) == 32
    sig = key.sign(b"msg")
    assert len(sig) == 64
    assert crypto.verify(key.public_key, b"msg", sig)
    assert not crypto.verify(key.public_key, b"msh", sig)
    assert crypto.verify_batch([(key.public_key, b"msg", sig)]) == [True]
    assert crypto.blake3(b"abc") == blake3_pkg.blake3(b"abc").digest()
    assert len(crypto.merkle_root([b"a", b"b"])) == 32


def test_address_is_blake3_of_domain_and_key() -> None:
    key = KEYS[0]
    want = blake3_pkg.blake3(b"bcai/addr" + key.public_key).digest()[:20]
    assert key.address == crypto.address(key.public_key) == want


def test_repr_never_shows_the_seed() -> None:
    key = crypto.PrivateKey(b"\xab" * 32)
    assert "abab" not in repr(key)
    assert key.address.hex() in repr(key)


def test_wrong_lengths_are_invalid_not_errors() -> None:
    key = KEYS[1]
    sig = key.sign(b"m")
    assert not crypto.verify(key.public_key[:31], b"m", sig)
    assert not crypto.verify(key.public_key, b"m", sig + b"\x00")
    assert crypto.verify_batch(
        [(key.public_key, b"m", sig), (key.public_key, b"m", sig[:10]), (b"", b"m", sig)]
    ) == [True, False, False]


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 7), st.binary(max_size=40), st.integers(0, 3)), max_size=40)
)
def test_batch_equals_single(spec: list[tuple[int, bytes, int]]) -> None:
    items = []
    for who, message, damage in spec:
        key = KEYS[who]
        msg = message
        sig = key.sign(msg)
        if damage == 1:
            sig = bytes([sig[0] ^ 1]) + sig[1:]
        elif damage == 2:
            msg += b"?"
        elif damage == 3:
            sig = sig[:-1]
        items.append((key.public_key, msg, sig))
    assert crypto.verify_batch(items) == [crypto.verify(*it) for it in items]


def test_bad_seed_is_refused() -> None:
    for seed in (b"", b"x" * 31, "y" * 32):
        try:
            crypto.PrivateKey(seed)  # type: ignore[arg-type]
        except ValueError as err:
            assert "32 bytes" in str(err)
        else:
            raise AssertionError(f"seed {seed!r} was accepted")
