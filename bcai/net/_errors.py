from bcai.errors import BcaiError


class NetError(BcaiError):
    """Root of network errors."""


class HandshakeError(NetError):
    """The secure handshake failed. Codes: ``handshake-timeout``,
    ``handshake-bad-message``, ``handshake-wrong-genesis``,
    ``handshake-wrong-version``, ``handshake-bad-identity``,
    ``handshake-closed``."""


class PeerMisbehaved(NetError):
    """The peer broke the wire protocol. Codes: ``frame-oversize``,
    ``frame-unknown-kind``, ``frame-bad-ciphertext``, ``frame-truncated``."""


class ConnectionClosed(NetError):
    """The session ended (``closed-by-peer``, ``goodbye``, ``closed``)."""
