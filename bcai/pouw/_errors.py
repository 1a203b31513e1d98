from bcai.errors import BcaiError


class InvalidSeal(BcaiError):
    """A PoUW seal that breaks a rule; `code` names it (``pouw-*``, listed in
    docs/pouw.md)."""
