from bcai.errors import BcaiError


class VmError(BcaiError):
    """A program is malformed or cannot run. Codes: ``vm-asm-*`` (text form),
    ``vm-check-*`` (static check, the message names the instruction),
    ``vm-out-of-gas``, ``vm-out-of-memory``."""
