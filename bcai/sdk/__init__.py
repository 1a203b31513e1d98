"""bcai.sdk: the node's API from Python — `Client` (blocking: scripts and
notebooks) and `AsyncClient` (asyncio or trio, with WebSocket
subscriptions), typed results, and helpers that build and sign
transactions.

    from bcai.sdk import Client
    from bcai.chain import Transfer
    client = Client("http://127.0.0.1:9380")
    sent = client.send(key, Transfer(to=bytes.fromhex(addr), amount=10**9))
    client.wait_for_tx(sent.id)

Layer: interfaces.
"""

from bcai.sdk._client import (
    DEFAULT_URL,
    ApiError,
    AsyncClient,
    Client,
    NodeUnreachable,
    build_transaction,
)
from bcai.sdk._types import (
    AccountInfo,
    BlockInfo,
    Head,
    MempoolInfo,
    NodeInfo,
    PeerInfo,
    Submitted,
    TxStatus,
)

__all__ = [
    "DEFAULT_URL",
    "AccountInfo",
    "ApiError",
    "AsyncClient",
    "BlockInfo",
    "Client",
    "Head",
    "MempoolInfo",
    "NodeInfo",
    "NodeUnreachable",
    "PeerInfo",
    "Submitted",
    "TxStatus",
    "build_transaction",
]
