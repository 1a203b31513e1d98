"""bcai: a public network where machine-learning work secures a blockchain.

Layers (DESIGN.md §3; `tests/test_layers.py` enforces the import rule):
native (`bcai_native`, `bcai._kernels`, `bcai.kernels`) → foundation
(`bcai.codec`, `bcai.crypto`) → consensus → compute → storage → network →
roles → interfaces (`bcai.cli`). Lower layers never import higher ones.
"""

from bcai.errors import BcaiError

__version__ = "0.1.0"
__all__ = ["BcaiError", "__version__"]
