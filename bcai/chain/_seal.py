"""Seal verification behind one interface, so proof of useful work can
replace the hash seal without touching validation.

`HashSeal`: BLAKE3(header's seal prefix ‖ seal bytes), read as a big-endian
integer, must be at most the header's target. It is real proof of work
(useless work), good for tests and devnets until the PoUW seal lands.
"""

from __future__ import annotations

from typing import Protocol

from bcai.chain._errors import InvalidBlock
from bcai.chain._types import Header
from bcai.crypto import blake3

MAX_HASH_SEAL_BYTES = 32


class SealVerifier(Protocol):
    def verify_seal(self, header: Header) -> None:
        """Raises InvalidBlock("block-bad-seal") unless the seal is valid."""


def sealed_job(seal: SealVerifier, header: Header) -> tuple[bytes, bytes] | None:
    """(job id, product id) of the MatMul job a header's seal computed, if
    its verifier knows of jobs (`sealed_job` method), else None."""
    method = getattr(seal, "sealed_job", None)
    return None if method is None else method(header)


def seal_hash(header: Header, seal: bytes) -> int:
    return int.from_bytes(blake3(header.seal_prefix() + seal), "big")


class HashSeal:
    """Proof of work by hashing: the seal is a nonce of at most 32 bytes."""

    def verify_seal(self, header: Header) -> None:
        if len(header.seal) > MAX_HASH_SEAL_BYTES:
            raise InvalidBlock("block-bad-seal", f"hash seal is {len(header.seal)} bytes > 32")
        if seal_hash(header, header.seal) > header.target:
            raise InvalidBlock("block-bad-seal", "seal hash is above the target")

    @staticmethod
    def mine(header: Header, max_tries: int = 1 << 32) -> bytes:
        """A nonce that seals `header` (its seal field is ignored)."""
        prefix = header.seal_prefix()
        for nonce in range(max_tries):
            seal = nonce.to_bytes(8, "big")
            if int.from_bytes(blake3(prefix + seal), "big") <= header.target:
                return seal
        raise InvalidBlock("block-bad-seal", f"no seal found in {max_tries} tries")
