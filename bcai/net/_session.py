"""Secure sessions: Noise_XX_25519_ChaChaPoly_SHA256 over a trio stream, then
length-prefixed frames chunked over Noise transport messages.

Wire (docs/protocol.md has the full layout):
- every Noise message, handshake or transport, is sent as a 2-byte big-endian
  length and that many bytes (≤ 65535);
- transport plaintexts are at most 65519 bytes (noiseprotocol 0.3.1 encrypts
  65535 but its peer can only decrypt ≤ 65519);
- the plaintext stream is a sequence of frames: kind u8, length u32
  big-endian, body. A length above the kind's maximum closes the session
  before anything is allocated;
- both directions rekey (Noise REKEY) after every 10,000 messages.
"""

from __future__ import annotations

import contextlib
import enum
from dataclasses import dataclass

import trio
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from noise.connection import Keypair, NoiseConnection
from noise.exceptions import (
    NoiseHandshakeError,
    NoiseInvalidMessage,
    NoiseMaxNonceError,
    NoiseValidationError,
    NoiseValueError,
)

from bcai.crypto import PrivateKey
from bcai.net._errors import ConnectionClosed, HandshakeError, PeerMisbehaved
from bcai.net._identity import HandshakePayload, check_payload, make_payload, peer_id

NOISE_NAME = b"Noise_XX_25519_ChaChaPoly_SHA256"
MAX_NOISE_MESSAGE = 65535
MAX_PLAINTEXT = 65519
REKEY_EVERY = 10_000
HANDSHAKE_TIMEOUT_S = 5.0
FRAME_HEADER = 5
# noiseprotocol's exceptions share no base class.
NOISE_ERRORS = (
    NoiseHandshakeError,
    NoiseInvalidMessage,
    NoiseMaxNonceError,
    NoiseValidationError,
    NoiseValueError,
    InvalidTag,
)


class FrameKind(enum.IntEnum):
    PING = 1
    PONG = 2
    GOODBYE = 3
    GOSSIP = 4
    REQUEST = 5
    RESPONSE = 6
    RELAY = 7


MAX_FRAME = {
    FrameKind.PING: 8,
    FrameKind.PONG: 8,
    FrameKind.GOODBYE: 256,
    FrameKind.GOSSIP: 4 << 20,
    FrameKind.REQUEST: 64 << 10,
    FrameKind.RESPONSE: 16 << 20,
    FrameKind.RELAY: (64 << 10) + 5,
}


@dataclass(frozen=True)
class NodeKeys:
    """A node's long-term identity (Ed25519) and Noise static key (X25519)."""

    identity: PrivateKey
    noise_private: bytes
    noise_public: bytes

    @classmethod
    def generate(cls, identity: PrivateKey | None = None) -> NodeKeys:
        key = X25519PrivateKey.generate()
        return cls(
            identity=identity or PrivateKey.generate(),
            noise_private=key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),
            noise_public=key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
        )


class _Reader:
    """Reads whole length-prefixed Noise messages from a stream."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def _fill(self, n: int) -> None:
        while len(self.buffer) < n:
            try:
                data = await self.stream.receive_some(max(n - len(self.buffer), 4096))
            except trio.ClosedResourceError as err:
                raise ConnectionClosed("closed", "the session was closed here") from err
            except trio.BrokenResourceError as err:
                raise ConnectionClosed("closed-by-peer", "the connection broke") from err
            if not data:
                raise ConnectionClosed("closed-by-peer", "the peer closed the connection")
            self.buffer += data

    async def message(self) -> bytes:
        await self._fill(2)
        size = int.from_bytes(self.buffer[:2], "big")
        await self._fill(2 + size)
        msg = bytes(self.buffer[2 : 2 + size])
        del self.buffer[: 2 + size]
        return msg


def _framed(message: bytes | bytearray) -> bytes:
    return len(message).to_bytes(2, "big") + bytes(message)


class SecureSession:
    """An authenticated, encrypted session with one peer."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        noise: NoiseConnection,
        reader: _Reader,
        remote: HandshakePayload,
    ) -> None:
        self.stream = stream
        self.remote = remote
        self.peer_id = peer_id(remote.identity_key)
        self._noise = noise
        self._reader = reader
        self._plain = bytearray()
        self._send_lock = trio.StrictFIFOLock()
        self._sent = 0
        self._received = 0
        self.closed = False

    async def send_frame(self, kind: FrameKind, body: bytes) -> None:
        if len(body) > MAX_FRAME[kind]:
            raise ValueError(f"{kind.name} frame of {len(body)} bytes > {MAX_FRAME[kind]}")
        data = bytes([kind]) + len(body).to_bytes(4, "big") + body
        async with self._send_lock:
            out = bytearray()
            for start in range(0, len(data), MAX_PLAINTEXT):
                out += _framed(self._noise.encrypt(data[start : start + MAX_PLAINTEXT]))
                self._sent += 1
                if self._sent % REKEY_EVERY == 0:
                    self._noise.rekey_outbound_cipher()
            try:
                await self.stream.send_all(bytes(out))
            except (trio.BrokenResourceError, trio.ClosedResourceError) as err:
                raise ConnectionClosed("closed-by-peer", "the connection is gone") from err

    async def _pull(self) -> None:
        message = await self._reader.message()
        try:
            self._plain += self._noise.decrypt(message)
        except NOISE_ERRORS as err:
            raise PeerMisbehaved("frame-bad-ciphertext", "a message failed authentication") from err
        self._received += 1
        if self._received % REKEY_EVERY == 0:
            self._noise.rekey_inbound_cipher()

    async def receive_frame(self) -> tuple[FrameKind, bytes]:
        """The next frame. A GOODBYE frame closes the session and raises
        ConnectionClosed with its reason; an unknown kind or an oversize
        length raises PeerMisbehaved before the body is read."""
        while len(self._plain) < FRAME_HEADER:
            await self._pull()
        raw_kind = self._plain[0]
        length = int.from_bytes(self._plain[1:5], "big")
        try:
            kind = FrameKind(raw_kind)
        except ValueError as err:
            raise PeerMisbehaved("frame-unknown-kind", f"frame kind {raw_kind}") from err
        if length > MAX_FRAME[kind]:
            raise PeerMisbehaved(
                "frame-oversize", f"{kind.name} frame of {length} bytes > {MAX_FRAME[kind]}"
            )
        while len(self._plain) < FRAME_HEADER + length:
            await self._pull()
        body = bytes(self._plain[FRAME_HEADER : FRAME_HEADER + length])
        del self._plain[: FRAME_HEADER + length]
        if kind == FrameKind.GOODBYE:
            await self.aclose()
            raise ConnectionClosed("goodbye", body.decode("utf-8", "replace"))
        return kind, body

    async def goodbye(self, reason: str) -> None:
        """Tells the peer why, then closes — the socket is closed even when
        the caller is cancelled while the GOODBYE frame is being sent."""
        try:
            with trio.move_on_after(1), contextlib.suppress(ConnectionClosed):
                await self.send_frame(
                    FrameKind.GOODBYE, reason.encode()[: MAX_FRAME[FrameKind.GOODBYE]]
                )
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        self.closed = True
        await self.stream.aclose()


def _noise(keys: NodeKeys, initiator: bool) -> NoiseConnection:
    noise = NoiseConnection.from_name(NOISE_NAME)
    if initiator:
        noise.set_as_initiator()
    else:
        noise.set_as_responder()
    noise.set_keypair_from_private_bytes(Keypair.STATIC, keys.noise_private)
    noise.start_handshake()
    return noise


def _capture_remote_static(noise: NoiseConnection, into: dict[str, bytes]) -> None:
    """noiseprotocol forgets the remote static key when the handshake
    completes; keep it (the responder learns it from the last message)."""
    protocol = noise.noise_protocol
    done = protocol.handshake_done

    def capture() -> None:
        rs = protocol.handshake_state.rs
        if rs is not None:
            into["rs"] = rs.public_bytes
        done()

    protocol.handshake_done = capture


async def handshake(
    stream: trio.abc.Stream,
    keys: NodeKeys,
    genesis: bytes,
    *,
    initiator: bool,
    listen_addrs: tuple[str, ...] = (),
    timeout_s: float = HANDSHAKE_TIMEOUT_S,
) -> SecureSession:
    """Runs the XX handshake and checks the peer's payload. On a mismatch the
    peer is told why (a GOODBYE frame) and HandshakeError is raised."""
    noise = _noise(keys, initiator)
    captured: dict[str, bytes] = {}
    _capture_remote_static(noise, captured)
    reader = _Reader(stream)
    payload = make_payload(keys.identity, keys.noise_public, genesis, listen_addrs)
    try:
        with trio.fail_after(timeout_s):
            if initiator:
                await stream.send_all(_framed(noise.write_message()))
                their_raw = noise.read_message(await reader.message())
                remote_static = noise.noise_protocol.handshake_state.rs.public_bytes
                await stream.send_all(_framed(noise.write_message(payload)))
            else:
                noise.read_message(await reader.message())
                await stream.send_all(_framed(noise.write_message(payload)))
                their_raw = noise.read_message(await reader.message())
                remote_static = captured["rs"]
    except trio.TooSlowError as err:
        await stream.aclose()
        raise HandshakeError("handshake-timeout", f"no handshake within {timeout_s} s") from err
    except (*NOISE_ERRORS, ValueError, KeyError) as err:
        await stream.aclose()
        raise HandshakeError("handshake-bad-message", f"not a valid handshake: {err}") from err
    except (ConnectionClosed, trio.BrokenResourceError) as err:
        await stream.aclose()
        raise HandshakeError("handshake-closed", "the peer closed during the handshake") from err
    except BaseException:  # cancelled (the node is stopping): close, then go
        await trio.aclose_forcefully(stream)
        raise
    try:
        remote = check_payload(bytes(their_raw), remote_static, genesis)
    except HandshakeError as err:
        session = SecureSession(stream, noise, reader, _placeholder())
        await session.goodbye(err.code)
        raise
    return SecureSession(stream, noise, reader, remote)


def _placeholder() -> HandshakePayload:
    return HandshakePayload(
        version=0, genesis=bytes(32), identity_key=bytes(32), signature=bytes(64), listen_addrs=()
    )
