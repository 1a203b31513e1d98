"""UPnP Internet Gateway Device port mapping: SSDP discovery, the device
description, and the WANIPConnection SOAP actions GetExternalIPAddress and
AddPortMapping. Harmless where no gateway answers (one second of SSDP).

- SSDP: `M-SEARCH` for `urn:schemas-upnp-org:device:InternetGatewayDevice:1`,
  sent to the multicast group 239.255.255.250:1900 and to the default
  gateway directly; the first `LOCATION:` answer wins.
- The description (HTTP GET, ≤ 64 KiB) names the control URL of a
  `WANIPConnection:1` or `WANPPPConnection:1` service.
- SOAP (HTTP POST, ≤ 64 KiB answers): the external address, then a TCP
  mapping of the listening port to our LAN address (same external port, one
  hour lease, description "bcai").
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

import trio

from bcai.net._natpmp import Mapping, default_gateway

SSDP = ("239.255.255.250", 1900)
SEARCH_S = 1.0
HTTP_TIMEOUT_S = 3.0
MAX_HTTP = 64 << 10
LEASE_S = 3600
SERVICES = (
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
)
SEARCH = (
    b'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\n'
    b"MX: 1\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n"
)


async def discover(gateway: str | None) -> tuple[str, str] | None:
    """(LOCATION url, our LAN address) of the first gateway that answers."""
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        await sock.bind(("0.0.0.0", 0))
        targets = [SSDP] + ([(gateway, 1900)] if gateway else [])
        for target in targets:
            try:
                await sock.sendto(SEARCH, target)
            except OSError:
                continue
        with trio.move_on_after(SEARCH_S):
            while True:
                data, (ip, _) = await sock.recvfrom(2048)
                match = re.search(rb"(?im)^location:\s*(\S+)", data)
                if match is not None:
                    url = match.group(1).decode("ascii", "replace")
                    return url, _local_address(ip)
    return None


def _local_address(remote_ip: str) -> str:
    """The address of ours that routes to `remote_ip`."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect((remote_ip, 9))
        return str(probe.getsockname()[0])
    finally:
        probe.close()


async def _http(url: str, method: str = "GET", body: bytes = b"", action: str = "") -> bytes:
    """A minimal HTTP/1.1 client (Connection: close); the body, or ValueError."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    if method == "POST":
        headers += [
            'Content-Type: text/xml; charset="utf-8"',
            f"SOAPAction: {action}",
            f"Content-Length: {len(body)}",
        ]
    with trio.fail_after(HTTP_TIMEOUT_S):
        stream = await trio.open_tcp_stream(host, port)
        async with stream:
            await stream.send_all(("\r\n".join(headers) + "\r\n\r\n").encode() + body)
            raw = b""
            while len(raw) <= MAX_HTTP:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    break
                raw += chunk
    head, _, content = raw.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    if len(status) < 2 or status[1] != b"200" or len(raw) > MAX_HTTP:
        raise ValueError(f"{url}: {head[:80]!r}")
    return content


def control_url(location: str, description: bytes) -> tuple[str, str] | None:
    """(control URL, service type) of the WAN connection service."""
    root = ET.fromstring(description)
    for service in root.iter():
        if not service.tag.endswith("service"):
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: (child.text or "").strip() for child in service}
        if fields.get("serviceType") in SERVICES and fields.get("controlURL"):
            base = urlsplit(location)
            url = fields["controlURL"]
            if not url.startswith("http"):
                url = f"{base.scheme}://{base.netloc}/{url.lstrip('/')}"
            return url, fields["serviceType"]
    return None


def _envelope(service: str, action: str, args: dict[str, str]) -> bytes:
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in args.items())
    return (
        '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
        's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>'
        f'<u:{action} xmlns:u="{service}">{inner}</u:{action}></s:Body></s:Envelope>'
    ).encode()


async def _soap(url: str, service: str, action: str, args: dict[str, str]) -> bytes:
    return await _http(url, "POST", _envelope(service, action, args), f'"{service}#{action}"')


async def map_port(internal_port: int, *, gateway: str | None = None) -> Mapping | None:
    """Maps TCP `internal_port` through a UPnP IGD; None if there is none or
    it refuses."""
    gateway = gateway or default_gateway()
    found = await discover(gateway)
    if found is None:
        return None
    location, lan_ip = found
    try:
        control = control_url(location, await _http(location))
        if control is None:
            return None
        url, service = control
        answer = await _soap(url, service, "GetExternalIPAddress", {})
        match = re.search(rb"<NewExternalIPAddress>([^<]+)<", answer)
        if match is None:
            return None
        external_ip = match.group(1).decode("ascii", "replace")
        await _soap(
            url,
            service,
            "AddPortMapping",
            {
                "NewRemoteHost": "",
                "NewExternalPort": str(internal_port),
                "NewProtocol": "TCP",
                "NewInternalPort": str(internal_port),
                "NewInternalClient": lan_ip,
                "NewEnabled": "1",
                "NewPortMappingDescription": "bcai",
                "NewLeaseDuration": str(LEASE_S),
            },
        )
    except (OSError, ValueError, ET.ParseError, trio.TooSlowError):
        return None
    host = urlsplit(location).hostname or ""
    return Mapping(host, external_ip, internal_port, internal_port, LEASE_S)
