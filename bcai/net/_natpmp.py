"""NAT-PMP port mapping (RFC 6886): ask the default gateway to forward our
listening port. Harmless where no gateway answers: two tries (250 ms, then
500 ms) and `None`.

Wire (UDP to the gateway, port 5351, big-endian):
- external address: request `0, 0`; answer `0, 128, result u16, epoch u32,
  ipv4 4 bytes`;
- map TCP: request `0, 2, 0 u16, internal port u16, suggested external
  port u16, lifetime u32`; answer `0, 130, result u16, epoch u32, internal
  port u16, external port u16, lifetime u32`.
A result other than 0 is an error the gateway reports (2 = not authorized,
3 = network failure, 4 = out of resources, 5 = unsupported opcode).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

import trio

PORT = 5351
OP_EXTERNAL = 0
OP_MAP_TCP = 2
TRIES_S = (0.25, 0.5)
LIFETIME_S = 7200


@dataclass(frozen=True)
class Mapping:
    gateway: str
    external_ip: str
    external_port: int
    internal_port: int
    lifetime_s: int


def default_gateway(route_table: str = "/proc/net/route") -> str | None:
    """The IPv4 default gateway from the kernel's routing table."""
    try:
        lines = Path(route_table).read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) > 2 and fields[1] == "00000000":
            return str(ipaddress.IPv4Address(struct.pack("<I", int(fields[2], 16))))
    return None


async def _ask(gateway: str, request: bytes, size: int, opcode: int) -> bytes | None:
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        await sock.connect((gateway, PORT))
        for wait in TRIES_S:
            await sock.send(request)
            with trio.move_on_after(wait):
                while True:
                    try:
                        data = await sock.recv(64)
                    except OSError:  # ICMP port unreachable: nobody there
                        return None
                    if len(data) >= size and data[0] == 0 and data[1] == 128 + opcode:
                        return data
    return None


async def map_port(
    internal_port: int, *, gateway: str | None = None, lifetime_s: int = LIFETIME_S
) -> Mapping | None:
    """Maps TCP `internal_port` on the gateway (the same external port is
    suggested); None if no gateway answers or it refuses."""
    gateway = gateway or default_gateway()
    if gateway is None:
        return None
    ext = await _ask(gateway, struct.pack(">BB", 0, OP_EXTERNAL), 12, OP_EXTERNAL)
    if ext is None or struct.unpack(">H", ext[2:4])[0] != 0:
        return None
    external_ip = str(ipaddress.IPv4Address(ext[8:12]))
    req = struct.pack(">BBHHHI", 0, OP_MAP_TCP, 0, internal_port, internal_port, lifetime_s)
    ans = await _ask(gateway, req, 16, OP_MAP_TCP)
    if ans is None:
        return None
    result, _epoch, internal, external, lifetime = struct.unpack(">HIHHI", ans[2:16])
    if result != 0 or internal != internal_port:
        return None
    return Mapping(gateway, external_ip, external, internal, lifetime)
