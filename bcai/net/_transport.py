"""TCP under trio: dial a peer, or serve inbound connections; each becomes a
SecureSession once the handshake passes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from bcai.net._errors import NetError
from bcai.net._session import HANDSHAKE_TIMEOUT_S, NodeKeys, SecureSession, handshake


async def connect(
    host: str,
    port: int,
    keys: NodeKeys,
    genesis: bytes,
    *,
    timeout_s: float = HANDSHAKE_TIMEOUT_S,
    listen_addrs: tuple[str, ...] = (),
) -> SecureSession:
    """Dials host:port and runs the handshake as initiator."""
    with trio.fail_after(timeout_s):
        stream = await trio.open_tcp_stream(host, port)
    return await handshake(
        stream, keys, genesis, initiator=True, timeout_s=timeout_s, listen_addrs=listen_addrs
    )


async def serve(
    listeners: list[trio.SocketListener],
    keys: NodeKeys,
    genesis: bytes,
    handler: Callable[[SecureSession], Awaitable[None]],
    *,
    on_reject: Callable[[NetError], None] | None = None,
    timeout_s: float = HANDSHAKE_TIMEOUT_S,
    listen_addrs: tuple[str, ...] = (),
) -> None:
    """Accepts connections forever; each runs its own handshake (so a slow or
    hostile one never holds up the others) and then `handler`."""

    async def one(stream: trio.SocketStream) -> None:
        try:
            session = await handshake(
                stream,
                keys,
                genesis,
                initiator=False,
                timeout_s=timeout_s,
                listen_addrs=listen_addrs,
            )
        except NetError as err:
            if on_reject is not None:
                on_reject(err)
            return
        try:
            await handler(session)
        finally:
            await session.aclose()

    await trio.serve_listeners(one, listeners)
