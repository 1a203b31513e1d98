"""Secure sessions over real sockets on 127.0.0.1 (and in-memory streams for
the fuzzing): handshake, frames, goodbye reasons, wrong genesis, forged
identities, stalled handshakes, oversize frames, junk mid-handshake, rekey."""

from __future__ import annotations

import dataclasses
import os
import socket
import tracemalloc

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from bcai.net import (
    MAX_PLAINTEXT,
    PROTOCOL_VERSION,
    ConnectionClosed,
    FrameKind,
    HandshakeError,
    HandshakePayload,
    NetError,
    NodeKeys,
    PeerMisbehaved,
    SecureSession,
    _session,
    connect,
    handshake,
    serve,
)

GENESIS = b"\x07" * 32


async def start_server(
    nursery: trio.Nursery,
    keys: NodeKeys,
    handler,  # type: ignore[no-untyped-def]
    rejects: list[NetError] | None = None,
    genesis: bytes = GENESIS,
    timeout_s: float = 5.0,
) -> int:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    nursery.start_soon(
        lambda: serve(
            listeners,
            keys,
            genesis,
            handler,
            on_reject=(rejects.append if rejects is not None else None),
            timeout_s=timeout_s,
        )
    )
    return int(port)


async def echo(session: SecureSession) -> None:
    try:
        while True:
            kind, body = await session.receive_frame()
            await session.send_frame(kind, body)
    except NetError:
        return


async def test_handshake_frames_and_goodbye() -> None:
    server_keys, client_keys = NodeKeys.generate(), NodeKeys.generate()
    async with trio.open_nursery() as nursery:
        port = await start_server(nursery, server_keys, echo)
        session = await connect("127.0.0.1", port, client_keys, GENESIS)
        assert session.remote.identity_key == server_keys.identity.public_key
        for body in (b"", b"ping!!!!", os.urandom(3 * MAX_PLAINTEXT + 17)):
            kind = FrameKind.PING if len(body) <= 8 else FrameKind.RESPONSE
            await session.send_frame(kind, body)
            assert await session.receive_frame() == (kind, body)
        await session.aclose()
        nursery.cancel_scope.cancel()


async def test_goodbye_carries_its_reason() -> None:
    async def say_bye(session: SecureSession) -> None:
        await session.goodbye("going-away")

    async with trio.open_nursery() as nursery:
        port = await start_server(nursery, NodeKeys.generate(), say_bye)
        session = await connect("127.0.0.1", port, NodeKeys.generate(), GENESIS)
        with pytest.raises(ConnectionClosed) as info:
            await session.receive_frame()
        assert info.value.code == "goodbye" and "going-away" in info.value.message
        nursery.cancel_scope.cancel()


async def test_wrong_genesis_is_refused_with_a_reason() -> None:
    rejects: list[NetError] = []
    async with trio.open_nursery() as nursery:
        port = await start_server(nursery, NodeKeys.generate(), echo, rejects)
        with pytest.raises(HandshakeError) as info:
            await connect("127.0.0.1", port, NodeKeys.generate(), b"\x08" * 32)
        assert info.value.code == "handshake-wrong-genesis"
        await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    assert [r.code for r in rejects] in (["handshake-closed"], ["handshake-wrong-genesis"], [])


def speaking_version(monkeypatch: pytest.MonkeyPatch, keys: NodeKeys, version: int) -> None:
    """The node with `keys` sends `version` in its handshake payload."""
    real = _session.make_payload

    def payload(identity, noise_static, genesis, listen_addrs=()):  # type: ignore[no-untyped-def]
        raw = real(identity, noise_static, genesis, listen_addrs)
        if identity.public_key != keys.identity.public_key:
            return raw
        return dataclasses.replace(HandshakePayload.decode(raw), version=version).encode()

    monkeypatch.setattr(_session, "make_payload", payload)


@pytest.mark.parametrize("old", ["client", "server"])
async def test_an_older_protocol_version_is_refused_with_a_reason(
    monkeypatch: pytest.MonkeyPatch, old: str
) -> None:
    """A node of protocol version 1 (before the PoUW noise sides were shared,
    whose seals this version rejects) is refused at the handshake, on
    either side, with ``handshake-wrong-version``."""
    assert PROTOCOL_VERSION == 2
    server_keys, client_keys = NodeKeys.generate(), NodeKeys.generate()
    speaking_version(monkeypatch, client_keys if old == "client" else server_keys, 1)
    rejects: list[NetError] = []
    async with trio.open_nursery() as nursery:
        port = await start_server(nursery, server_keys, echo, rejects)
        codes = []
        try:
            session = await connect("127.0.0.1", port, client_keys, GENESIS)
            await session.send_frame(FrameKind.PING, b"hello")
            await session.receive_frame()
        except NetError as err:  # refused by us, or the server's goodbye with its reason
            codes.append(err.code)
            assert err.code == "handshake-wrong-version" or "handshake-wrong-version" in str(err)
        await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    assert codes, "the session was not refused"
    if old == "client":
        assert [r.code for r in rejects] == ["handshake-wrong-version"]
        assert "v1" in str(rejects[0])
    else:
        assert codes == ["handshake-wrong-version"]


async def test_forged_identity_is_refused() -> None:
    honest, other = NodeKeys.generate(), NodeKeys.generate()
    # Claims honest's identity but signs (and so authenticates) another Noise key.
    forged = dataclasses.replace(honest, noise_public=other.noise_public)
    rejects: list[NetError] = []
    async with trio.open_nursery() as nursery:
        port = await start_server(nursery, NodeKeys.generate(), echo, rejects)
        session = await connect("127.0.0.1", port, forged, GENESIS)
        with pytest.raises(ConnectionClosed) as info:
            await session.receive_frame()  # the server says goodbye, and why
        assert "handshake-bad-identity" in info.value.message
        await session.aclose()
        await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    assert [r.code for r in rejects] == ["handshake-bad-identity"]


async def test_stalled_handshake_times_out(autojump_clock: trio.testing.MockClock) -> None:
    rejects: list[NetError] = []
    async with trio.open_nursery() as nursery:
        port = await start_server(nursery, NodeKeys.generate(), echo, rejects, timeout_s=5.0)
        silent = await trio.open_tcp_stream("127.0.0.1", port)  # says nothing
        await trio.sleep(6)
        assert [r.code for r in rejects] == ["handshake-timeout"]
        await silent.aclose()
        nursery.cancel_scope.cancel()


async def test_junk_mid_handshake_does_not_stall_the_listener() -> None:
    rejects: list[NetError] = []
    async with trio.open_nursery() as nursery:
        port = await start_server(nursery, NodeKeys.generate(), echo, rejects)
        junk = await trio.open_tcp_stream("127.0.0.1", port)
        await junk.send_all(os.urandom(64 * 1024))
        with trio.fail_after(5):  # an honest peer still gets in at once
            session = await connect("127.0.0.1", port, NodeKeys.generate(), GENESIS)
            await session.send_frame(FrameKind.PING, b"12345678")
            assert await session.receive_frame() == (FrameKind.PING, b"12345678")
        # Junk ends either in a message that fails to decrypt, or in a wait
        # for bytes that never come, which closing the socket ends.
        await junk.aclose()
        await trio.sleep(0.1)
        assert [r.code for r in rejects] in (["handshake-bad-message"], ["handshake-closed"])
        await session.aclose()
        nursery.cancel_scope.cancel()


async def session_pair() -> tuple[SecureSession, SecureSession]:
    left, right = trio.testing.memory_stream_pair()
    a_keys, b_keys = NodeKeys.generate(), NodeKeys.generate()
    out: dict[str, SecureSession] = {}

    async def run(name: str, stream: trio.abc.Stream, keys: NodeKeys, initiator: bool) -> None:
        out[name] = await handshake(stream, keys, GENESIS, initiator=initiator)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, "a", left, a_keys, True)
        nursery.start_soon(run, "b", right, b_keys, False)
    return out["a"], out["b"]


async def send_raw_plaintext(session: SecureSession, plaintext: bytes) -> None:
    """Sends bytes as the plaintext stream, bypassing frame checks."""
    for start in range(0, max(len(plaintext), 1), MAX_PLAINTEXT):
        ct = session._noise.encrypt(plaintext[start : start + MAX_PLAINTEXT])
        await session.stream.send_all(len(ct).to_bytes(2, "big") + ct)
        session._sent += 1


async def test_announced_4_gib_frame_is_dropped_without_allocating() -> None:
    a, b = await session_pair()
    tracemalloc.start()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            send_raw_plaintext, a, bytes([FrameKind.GOSSIP]) + (2**32 - 1).to_bytes(4, "big")
        )
        with pytest.raises(PeerMisbehaved) as info:
            await b.receive_frame()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert info.value.code == "frame-oversize"
    assert peak < 1 << 20


async def test_unknown_kind_and_bad_ciphertext() -> None:
    a, b = await session_pair()
    await send_raw_plaintext(a, bytes([99, 0, 0, 0, 0]))
    with pytest.raises(PeerMisbehaved) as info:
        await b.receive_frame()
    assert info.value.code == "frame-unknown-kind"
    a, b = await session_pair()
    await a.stream.send_all(b"\x00\x20" + os.urandom(32))
    with pytest.raises(PeerMisbehaved) as info:
        await b.receive_frame()
    assert info.value.code == "frame-bad-ciphertext"


async def test_rekey_keeps_both_sides_in_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_session, "REKEY_EVERY", 7)
    a, b = await session_pair()
    async with trio.open_nursery() as nursery:

        async def send_all() -> None:
            for i in range(50):
                await a.send_frame(FrameKind.PING, i.to_bytes(8, "big"))

        nursery.start_soon(send_all)
        for i in range(50):
            assert await b.receive_frame() == (FrameKind.PING, i.to_bytes(8, "big"))


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_frame_decoder_only_raises_protocol_errors(plaintext: bytes) -> None:
    async def main() -> None:
        a, b = await session_pair()
        await send_raw_plaintext(a, plaintext)
        await a.stream.aclose()
        with trio.fail_after(5):
            try:
                while True:
                    kind, body = await b.receive_frame()
                    assert len(body) <= _session.MAX_FRAME[kind]
            except (PeerMisbehaved, ConnectionClosed):
                return

    trio.run(main)


async def test_goodbye_cut_short_by_a_cancel_still_closes_the_socket() -> None:
    """Real TCP: the peer stops reading, so the GOODBYE frame cannot be
    sent; the caller is cancelled (a node shutting down) before goodbye's
    own 1 s limit — the socket is closed all the same, not left to the
    garbage collector."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    a_keys, b_keys = NodeKeys.generate(), NodeKeys.generate()
    out: dict[str, SecureSession] = {}

    async def accept() -> None:
        stream = await listeners[0].accept()
        out["b"] = await handshake(stream, b_keys, GENESIS, initiator=False)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(accept)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        out["a"] = await handshake(stream, a_keys, GENESIS, initiator=True)
    a, b = out["a"], out["b"]
    # b never reads: fill the kernel's buffers through a duplicate of a's socket
    raw = socket.socket(fileno=os.dup(a.stream.socket.fileno()))  # type: ignore[attr-defined]
    raw.setblocking(False)
    with pytest.raises(BlockingIOError):
        while True:
            raw.send(bytes(1 << 16))
    raw.close()
    with trio.move_on_after(0.2) as cut:
        await a.goodbye("shutting-down")
    assert cut.cancelled_caught
    assert a.closed
    assert a.stream.socket.fileno() == -1  # type: ignore[attr-defined]
    await b.aclose()
    await listeners[0].aclose()
