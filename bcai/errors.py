"""The root of bcai's exceptions. Each layer derives its own from `BcaiError`
(`DecodeError`, `KeystoreError`, …), each carrying a stable reason `code`."""


class BcaiError(Exception):
    """Base of every error bcai raises on purpose.

    Attributes:
        code: a stable, machine-readable reason (e.g. ``codec-trailing-bytes``).
    """

    code: str = "bcai-error"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
