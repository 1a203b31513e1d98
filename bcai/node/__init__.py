"""bcai.node: the roles a node plays (the mempool and the chain's gossip relay
today; producer, worker, verifier and the services that wire them together
come with the node issue).

Layer: roles.
"""

from bcai.node.mempool import Mempool, MempoolReject
from bcai.node.relay import ChainRelay

__all__ = ["ChainRelay", "Mempool", "MempoolReject"]
