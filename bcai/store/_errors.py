from bcai.errors import BcaiError


class StoreError(BcaiError):
    """Codes: ``store-wrong-chain``, ``store-unknown-format``, ``store-corrupt``,
    ``store-not-found``."""
