"""TCP sockets that share the listening port.

A node listens on one port and, when `reuse_port` is on, dials every
outbound connection *from* that port too (SO_REUSEADDR + SO_REUSEPORT). A NAT
that maps endpoint-independently (Linux MASQUERADE without --random) then
shows every peer the same public ip:port, which is both the address peers
observe and the one hole punching aims at; and a dial from the listening
port to a peer that dials us at the same time becomes one connection (TCP
simultaneous open).
"""

from __future__ import annotations

import socket

import trio

BACKLOG = 128


def _reusable(family: int) -> trio.socket.SocketType:
    sock = trio.socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    return sock


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


async def open_listener(host: str, port: int, *, reuse_port: bool) -> trio.SocketListener:
    if not reuse_port:
        listeners = await trio.open_tcp_listeners(port, host=host)
        return listeners[0]
    sock = _reusable(_family(host))
    try:
        await sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return trio.SocketListener(sock)


async def dial_from(
    local_port: int | None, host: str, port: int, *, timeout_s: float
) -> trio.SocketStream:
    """Connects to host:port, from `local_port` when given (shared with the
    listener). Raises OSError or trio.TooSlowError."""
    if local_port is None:
        with trio.fail_after(timeout_s):
            return await trio.open_tcp_stream(host, port)
    family = _family(host)
    sock = _reusable(family)
    try:
        await sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", local_port))
        with trio.fail_after(timeout_s):
            await sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)
