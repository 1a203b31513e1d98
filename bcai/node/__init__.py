"""bcai.node: the roles a node plays (mempool today; producer, worker,
verifier and the services that wire them together come with the node issue).

Layer: roles.
"""

from bcai.node.mempool import Mempool, MempoolReject

__all__ = ["Mempool", "MempoolReject"]
