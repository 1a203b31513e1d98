"""bcai.sdk: the node's API from Python — `Client` (blocking: scripts and
notebooks) and `AsyncClient` (asyncio or trio, with WebSocket
subscriptions), typed results, and helpers that build and sign
transactions.

    from bcai.sdk import Client
    from bcai.chain import Transfer
    client = Client("http://127.0.0.1:9380")
    sent = client.send(key, Transfer(to=bytes.fromhex(addr), amount=10**9))
    client.wait_for_tx(sent.id)

    # a MatMul job: A (n×k) and B (k×m) with entries within ±63, paid in escrow
    job = client.post_job(key, a, b, amount=10**9, deadline=client.head().height + 100)
    c = client.product(client.wait_for_job(job.id, timeout=600))  # C = A·B, int32

Layer: interfaces.
"""

from bcai.sdk._client import DEFAULT_URL, AsyncClient, Client, build_transaction
from bcai.sdk._errors import ApiError, NodeUnreachable
from bcai.sdk._jobs import JobFailed, JobInputError, matmul_job
from bcai.sdk._types import (
    AccountInfo,
    BlockInfo,
    Head,
    JobInfo,
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
    "JobFailed",
    "JobInfo",
    "JobInputError",
    "MempoolInfo",
    "NodeInfo",
    "NodeUnreachable",
    "PeerInfo",
    "Submitted",
    "TxStatus",
    "build_transaction",
    "matmul_job",
]
