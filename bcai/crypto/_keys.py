"""Ed25519 keys (ZIP-215 rules), addresses and signatures, over `bcai_native`."""

from __future__ import annotations

from collections.abc import Sequence

import bcai_native

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
SEED_SIZE = 32
ADDRESS_SIZE = 20
ADDRESS_DOMAIN = b"bcai/addr"


def address(public_key: bytes) -> bytes:
    """The 20-byte address of a public key: BLAKE3("bcai/addr" ‖ key)[:20]."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise ValueError(f"public key must be {PUBLIC_KEY_SIZE} bytes, got {len(public_key)}")
    return bcai_native.blake3_hash(ADDRESS_DOMAIN + public_key)[:ADDRESS_SIZE]


class PrivateKey:
    """An Ed25519 signing key (its 32-byte seed). Never printed or compared
    by value in a way that leaks it: `repr` shows the address only."""

    __slots__ = ("_public_key", "_seed")

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes) or len(seed) != SEED_SIZE:
            raise ValueError(f"an Ed25519 seed is {SEED_SIZE} bytes")
        self._seed = seed
        self._public_key = bcai_native.ed25519_public_key(seed)

    @classmethod
    def generate(cls) -> PrivateKey:
        """A new key from the operating system's randomness."""
        return cls(bcai_native.ed25519_generate())

    @property
    def public_key(self) -> bytes:
        """The 32-byte public key."""
        return self._public_key

    @property
    def address(self) -> bytes:
        """The 20-byte account address."""
        return address(self._public_key)

    def seed_bytes(self) -> bytes:
        """The secret seed. Handle with care (keystores call this)."""
        return self._seed

    def sign(self, message: bytes) -> bytes:
        """A 64-byte deterministic Ed25519 signature of `message`."""
        return bcai_native.ed25519_sign(self._seed, message)

    def __repr__(self) -> str:
        return f"PrivateKey(address={self.address.hex()})"


def _well_formed(public_key: bytes, signature: bytes) -> bool:
    return len(public_key) == PUBLIC_KEY_SIZE and len(signature) == SIGNATURE_SIZE


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """ZIP-215 verification. A key or signature of the wrong length is simply
    invalid (False): such bytes may come from a peer."""
    if not _well_formed(public_key, signature):
        return False
    return bcai_native.ed25519_verify(public_key, message, signature)


def verify_batch(items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
    """Verifies (public_key, message, signature) items in one batch; returns
    one flag per item, the same as `verify` would give for each."""
    flags = [_well_formed(pk, sig) for pk, _, sig in items]
    good = [item for item, ok in zip(items, flags, strict=True) if ok]
    results = iter(bcai_native.ed25519_verify_batch(good))
    return [next(results) if ok else False for ok in flags]
