"""The handshake payload: who a node is and which chain it follows.

Each side sends, inside its Noise handshake message (XX messages 2 and 3,
encrypted): protocol version, genesis hash, its Ed25519 identity key, the
identity key's signature over "bcai-noise-static-key:" ‖ its Noise static
key, and up to 8 listen addresses. The receiver checks the signature against
the static key the handshake itself authenticated, so an identity cannot be
replayed over another Noise key. Peer id = BLAKE3(identity key).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bcai import codec
from bcai.crypto import PrivateKey, blake3, verify
from bcai.net._errors import HandshakeError

PROTOCOL_VERSION = 2  # 2: PoUW noise sides shared by neighbouring nonces (docs/pouw.md)
STATIC_KEY_PREFIX = b"bcai-noise-static-key:"


@dataclass(frozen=True, slots=True)
class HandshakePayload(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/net/handshake"
    MAX_SIZE: ClassVar[int] = 2048
    version: int = codec.field(codec.U16)
    genesis: bytes = codec.field(codec.FixedBytes(32))
    identity_key: bytes = codec.field(codec.FixedBytes(32))
    signature: bytes = codec.field(codec.FixedBytes(64))
    listen_addrs: tuple[str, ...] = codec.field(codec.ListOf(codec.Text(64), 8))


def peer_id(identity_key: bytes) -> bytes:
    return blake3(identity_key)


def make_payload(
    identity: PrivateKey, noise_static: bytes, genesis: bytes, listen_addrs: tuple[str, ...] = ()
) -> bytes:
    return HandshakePayload(
        version=PROTOCOL_VERSION,
        genesis=genesis,
        identity_key=identity.public_key,
        signature=identity.sign(STATIC_KEY_PREFIX + noise_static),
        listen_addrs=listen_addrs,
    ).encode()


def check_payload(raw: bytes, remote_static: bytes, genesis: bytes) -> HandshakePayload:
    """Decodes and checks the peer's payload against the Noise static key the
    handshake authenticated and our genesis."""
    try:
        payload = HandshakePayload.decode(bytes(raw))
    except codec.DecodeError as err:
        raise HandshakeError("handshake-bad-message", f"payload: {err.message}") from err
    if payload.version != PROTOCOL_VERSION:
        raise HandshakeError(
            "handshake-wrong-version",
            f"peer speaks v{payload.version}, we speak v{PROTOCOL_VERSION}",
        )
    if payload.genesis != genesis:
        raise HandshakeError("handshake-wrong-genesis", "the peer follows another chain")
    if not verify(payload.identity_key, STATIC_KEY_PREFIX + remote_static, payload.signature):
        raise HandshakeError(
            "handshake-bad-identity", "the identity signature does not cover this Noise key"
        )
    return payload
