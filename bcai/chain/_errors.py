from bcai.errors import BcaiError


class InvalidTransaction(BcaiError):
    """A transaction that breaks a rule; `code` names the rule (``tx-*``)."""


class InvalidBlock(BcaiError):
    """A block that breaks a rule; `code` names the rule (``block-*``, or the
    ``tx-*`` code of the first invalid transaction, with its index)."""
