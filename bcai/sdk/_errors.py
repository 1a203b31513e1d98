"""The SDK's errors (besides those of `bcai.chain` it passes on)."""

from __future__ import annotations

from bcai.errors import BcaiError


class ApiError(BcaiError):
    """The node answered with an error: HTTP `status` and its `code`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code, message)
        self.status = status


class NodeUnreachable(BcaiError):
    """No node answered at the URL (code ``sdk-unreachable``)."""
