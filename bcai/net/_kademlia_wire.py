"""Kademlia contacts and the DHT wire records: the bodies of the requests
`bcai.net._dht` sends, and the ``ip:port`` addresses inside them.

* Wire lists are capped at ``MAX_CONTACTS = 20`` and 4 addresses per contact,
  each a ``host:port`` with an IP literal (IPv6 in brackets), so a decoder
  never allocates more than a few kilobytes per message.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from bcai import codec
from bcai.net._errors import NetError

ID_BYTES = 32
MAX_CONTACTS = 20
MAX_ADDRS = 4
MAX_ADDR_LEN = 64

_PORT = re.compile(r"[1-9][0-9]{0,4}")


class DhtError(NetError):
    """Bad DHT input. Codes: ``dht-bad-address`` (not ``ip:port`` with an IP
    literal and a port in 1..65535), ``dht-malformed`` (a record or contact
    that breaks the wire rules), ``dht-bad-key`` (a key that is not 32 bytes)."""


def _check_id(value: object, what: str, code: str = "dht-malformed") -> bytes:
    if not isinstance(value, bytes) or len(value) != ID_BYTES:
        raise DhtError(code, f"{what} must be {ID_BYTES} bytes, got {value!r:.80}")
    return value


def _canonical_ip(host: str) -> str | None:
    """The canonical text of an IP literal without a scope id, or None."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
        return None
    return str(ip)


@dataclass(frozen=True, slots=True)
class Contact:
    """How to reach a node: its peer id and one dialable address.

    Raises:
        DhtError: ``dht-malformed`` for a peer id that is not 32 bytes,
            ``dht-bad-address`` for a host that is not a canonical IP literal
            or a port outside 1..65535.
    """

    peer_id: bytes
    host: str
    port: int

    def __post_init__(self) -> None:
        _check_id(self.peer_id, "peer id")
        if not isinstance(self.host, str) or _canonical_ip(self.host) != self.host:
            raise DhtError("dht-bad-address", f"host {self.host!r:.80} is not a canonical IP")
        if type(self.port) is not int or not 1 <= self.port <= 65535:
            raise DhtError("dht-bad-address", f"port {self.port!r:.20} is not in 1..65535")


# --- wire records ----------------------------------------------------------

PEER_ID = codec.FixedBytes(ID_BYTES)


@dataclass(frozen=True, slots=True)
class ContactRecord(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/dht/contact"
    peer_id: bytes = codec.field(PEER_ID)
    addrs: tuple[str, ...] = codec.field(codec.ListOf(codec.Text(MAX_ADDR_LEN), MAX_ADDRS))


CONTACTS = codec.ListOf(codec.RecordCodec(ContactRecord), MAX_CONTACTS)


@dataclass(frozen=True, slots=True)
class FindNode(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/dht/find-node"
    target: bytes = codec.field(PEER_ID)


@dataclass(frozen=True, slots=True)
class Nodes(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/dht/nodes"
    contacts: tuple[ContactRecord, ...] = codec.field(CONTACTS)


@dataclass(frozen=True, slots=True)
class AddProvider(codec.Record):
    """An announcement; the receiver must check that `provider.peer_id` is
    the sender's authenticated peer id before storing it."""

    DOMAIN: ClassVar[bytes] = b"bcai/dht/add-provider"
    key: bytes = codec.field(PEER_ID)
    provider: ContactRecord = codec.field(codec.RecordCodec(ContactRecord))


@dataclass(frozen=True, slots=True)
class GetProviders(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/dht/get-providers"
    key: bytes = codec.field(PEER_ID)


@dataclass(frozen=True, slots=True)
class Providers(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/dht/providers"
    providers: tuple[ContactRecord, ...] = codec.field(CONTACTS)
    closer: tuple[ContactRecord, ...] = codec.field(CONTACTS)


R = TypeVar("R", bound=codec.Record)


def decode_message(cls: type[R], body: bytes) -> R:
    """Decodes one DHT record, turning codec errors into ``dht-malformed``."""
    try:
        return cls.decode(body)
    except codec.DecodeError as err:
        raise DhtError("dht-malformed", f"{cls.__name__}: {err.message}") from err


def format_address(host: str, port: int) -> str:
    """``1.2.3.4:80`` or ``[::1]:80``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_address(text: str) -> tuple[str, int]:
    """Parses ``ip:port`` (IPv6 in brackets) into a canonical host and port.

    Raises:
        DhtError: ``dht-bad-address`` for anything else (host names, scope
            ids, missing or out-of-range ports, leading zeros, spaces).
    """
    if not isinstance(text, str):
        raise DhtError("dht-bad-address", f"address must be text, got {type(text).__name__}")
    host, sep, port = text.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    canonical = _canonical_ip(host) if sep else None
    if canonical is None or bracketed != (":" in canonical) or not _PORT.fullmatch(port):
        raise DhtError("dht-bad-address", f"{text!r:.80} is not ip:port")
    if int(port) > 65535:
        raise DhtError("dht-bad-address", f"{text!r:.80}: port above 65535")
    return canonical, int(port)


def contact_to_record(contact: Contact) -> ContactRecord:
    return ContactRecord(
        peer_id=contact.peer_id, addrs=(format_address(contact.host, contact.port),)
    )


def contact_from_record(record: ContactRecord) -> Contact:
    """The contact a record describes, dialled at its first valid address
    (later addresses may be kinds this version does not know).

    Raises:
        DhtError: ``dht-malformed`` for a bad peer id or no addresses,
            ``dht-bad-address`` when no address is a valid ``ip:port``.
    """
    peer_id = _check_id(record.peer_id, "contact peer id")
    if not record.addrs or len(record.addrs) > MAX_ADDRS:
        raise DhtError("dht-malformed", f"contact has {len(record.addrs)} addresses")
    error = DhtError("dht-bad-address", "contact has no usable address")
    for addr in record.addrs:
        try:
            host, port = parse_address(addr)
        except DhtError as err:
            error = err
            continue
        return Contact(peer_id, host, port)
    raise error


def contacts_from_records(records: Iterable[ContactRecord]) -> list[Contact]:
    """Converts a wire list; the first bad contact raises `DhtError`."""
    return [contact_from_record(r) for r in records]
