"""A NAT-PMP gateway (RFC 6886, the parts a client uses) for the harness:
run in a NAT router's namespace, it answers on the LAN address, port 5351,
and installs each mapping as real iptables DNAT + FORWARD rules.

    python -m tests.nat.natpmp_gateway LAN_IP WAN_DEV WAN_IP
"""

from __future__ import annotations

import socket
import struct
import sys
import time

from tests.nat.netns import forward_port


def serve(lan_ip: str, wan_dev: str, wan_ip: str) -> None:
    start = time.monotonic()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((lan_ip, 5351))
    print("ready", flush=True)
    while True:
        data, (client, port) = sock.recvfrom(64)
        epoch = int(time.monotonic() - start)
        if len(data) == 2 and data == b"\x00\x00":
            ip = socket.inet_aton(wan_ip)
            sock.sendto(struct.pack(">BBHI", 0, 128, 0, epoch) + ip, (client, port))
        elif len(data) == 12 and data[:2] == b"\x00\x02":
            _, _, _, internal, external, lifetime = struct.unpack(">BBHHHI", data)
            external = external or internal
            forward_port(wan_dev, external, client, internal)
            answer = struct.pack(">BBHIHHI", 0, 130, 0, epoch, internal, external, lifetime)
            sock.sendto(answer, (client, port))
        else:
            sock.sendto(
                struct.pack(">BBHI", 0, 128 + data[1] if len(data) > 1 else 128, 5, epoch),
                (client, port),
            )


if __name__ == "__main__":
    serve(*sys.argv[1:4])
