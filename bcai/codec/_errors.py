from bcai.errors import BcaiError


class DecodeError(BcaiError):
    """Bytes that are not the canonical encoding of the expected type.

    Codes: ``codec-truncated``, ``codec-trailing-bytes``, ``codec-oversize``,
    ``codec-out-of-range``, ``codec-bad-bool``, ``codec-bad-option-tag``,
    ``codec-unknown-variant``, ``codec-bad-utf8``, ``codec-not-bytes``.
    """


class EncodeError(BcaiError):
    """A value that cannot be encoded (wrong type, out of range, too long).

    Codes: ``codec-bad-type``, ``codec-out-of-range``, ``codec-oversize``.
    """
