"""`Client` (blocking) and `AsyncClient` (asyncio or trio) over the node's
API, with the same typed methods; plus signing helpers that build, sign and
submit transfers, stakes, unstakes, burns and MatMul jobs."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio
import httpx
import numpy as np
import numpy.typing as npt
import wsproto
import wsproto.events

from bcai.chain import (
    Burn,
    MatMulPost,
    Stake,
    Transaction,
    Transfer,
    UnsignedTransaction,
    Unstake,
)
from bcai.chain import sign_transaction as _sign
from bcai.crypto import PrivateKey
from bcai.errors import BcaiError
from bcai.pouw import content_id
from bcai.sdk._errors import ApiError, NodeUnreachable
from bcai.sdk._jobs import (
    JobFailed,
    _check_deadline,
    _jobs,
    _jobs_query,
    _product,
    _sealed,
    _stored,
    matmul_job,
)
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

T = TypeVar("T")
Payload = Transfer | Stake | Unstake | Burn | MatMulPost
DEFAULT_URL = "http://127.0.0.1:9380"
DROPPED_POLLS = 5  # a job seen, then unknown this many polls in a row, was dropped


def _blob(response: httpx.Response, blob_id: str) -> bytes:
    if response.status_code >= 400:
        _decode(response)  # raises the node's error
    data = response.content
    if content_id(data).hex() != blob_id:
        raise ApiError(response.status_code, "sdk-blob-mismatch", "the bytes are not that blob")
    return data


def _decode(response: httpx.Response) -> Any:
    try:
        doc = response.json()
    except json.JSONDecodeError as err:
        raise ApiError(response.status_code, "sdk-bad-response", response.text[:200]) from err
    if response.status_code >= 400:
        error = doc.get("error", {}) if isinstance(doc, dict) else {}
        raise ApiError(
            response.status_code, error.get("code", "api-error"), error.get("message", "")
        )
    return doc


def build_transaction(
    key: PrivateKey,
    payload: Payload,
    *,
    chain_id: int,
    nonce: int,
    base_fee: int,
    tip: int = 1,
    max_fee: int | None = None,
) -> Transaction:
    """A signed transaction; `max_fee` defaults to twice the base fee plus the tip."""
    body = UnsignedTransaction(
        chain_id=chain_id,
        sender=key.public_key,
        nonce=nonce,
        max_fee=max_fee if max_fee is not None else 2 * base_fee + tip,
        tip=tip,
        payload=payload,
    )
    return _sign(key, body)


def _poll(
    get: Callable[[], T],
    done: Callable[[T], bool],
    describe: Callable[[T | None], str],
    *,
    timeout: float,
    poll: float,
    progress: Callable[[T | None], None] | None,
    dropped: BcaiError | None = None,
) -> T:
    """Calls `get` every `poll` seconds (None for what the node does not
    know: 404) until `done`; TimeoutError (`describe`) after `timeout`, or
    `dropped` when something seen turns unknown DROPPED_POLLS times in a row."""
    deadline = time.monotonic() + timeout
    seen, gone = False, 0
    while True:
        item: T | None
        try:
            item = get()
            seen, gone = True, 0
        except ApiError as err:
            if err.status != 404:
                raise
            item, gone = None, gone + 1
        if progress is not None:
            progress(item)
        if item is not None and done(item):
            return item
        if dropped is not None and seen and gone >= DROPPED_POLLS:
            raise dropped
        if time.monotonic() > deadline:
            raise TimeoutError(f"{describe(item)} after {timeout} s")
        time.sleep(poll)


def _block_path(block: int | str) -> str:
    return f"/v1/chain/blocks/{block}"


def _peers(doc: dict[str, Any]) -> list[PeerInfo]:
    return [PeerInfo(p["peer"], p["address"], p["inbound"], p["ping_ms"]) for p in doc["peers"]]


def _mempool(doc: dict[str, Any]) -> MempoolInfo:
    return MempoolInfo(doc["count"], doc["bytes"], doc["txs"])


class Client:
    """The node's API, blocking (scripts, notebooks)::

    client = Client("http://127.0.0.1:9380")
    client.head().height
    """

    def __init__(self, url: str = DEFAULT_URL, *, token: str | None = None, timeout: float = 10.0):
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Any = None, params: Any = None) -> Any:
        try:
            response = self._http.request(method, path, json=body, params=params)
        except httpx.TransportError as err:
            raise NodeUnreachable("sdk-unreachable", f"{self.url}: {err}") from err
        return _decode(response)

    def info(self) -> NodeInfo:
        return NodeInfo.from_json(self._call("GET", "/v1/node/info"))

    def head(self) -> Head:
        return Head.from_json(self._call("GET", "/v1/chain/head"))

    def block(self, block: int | str, *, full_txs: bool = False) -> BlockInfo:
        """A main-chain block by height or hash."""
        params = {"txs": "full"} if full_txs else None
        return BlockInfo.from_json(self._call("GET", _block_path(block), params=params))

    def tx(self, tx_id: str) -> TxStatus:
        return TxStatus.from_json(self._call("GET", f"/v1/chain/txs/{tx_id}"))

    def account(self, address: str | bytes) -> AccountInfo:
        addr = address.hex() if isinstance(address, bytes) else address
        return AccountInfo.from_json(self._call("GET", f"/v1/chain/accounts/{addr}"))

    def submit(self, tx: Transaction) -> Submitted:
        doc = self._call("POST", "/v1/mempool/txs", {"tx": tx.encode().hex()})
        return Submitted(doc["id"], doc["status"])

    def mempool(self, limit: int = 100) -> MempoolInfo:
        return _mempool(self._call("GET", "/v1/mempool/txs", params={"limit": limit}))

    def put_blob(self, data: bytes) -> str:
        """Stores a blob (a MatMul job's matrix) on the node; its content id."""
        try:
            response = self._http.post(
                "/v1/blobs", content=data, headers={"content-type": "application/octet-stream"}
            )
        except httpx.TransportError as err:
            raise NodeUnreachable("sdk-unreachable", f"{self.url}: {err}") from err
        return str(_decode(response)["id"])

    def get_blob(self, blob_id: str) -> bytes:
        """A blob's bytes, checked against its content id."""
        try:
            response = self._http.get(f"/v1/blobs/{blob_id}")
        except httpx.TransportError as err:
            raise NodeUnreachable("sdk-unreachable", f"{self.url}: {err}") from err
        return _blob(response, blob_id)

    def job(self, job_id: str) -> JobInfo:
        """A MatMul job's record (with its state proof once in the chain)."""
        return JobInfo.from_json(self._call("GET", f"/v1/jobs/{job_id}"))

    def jobs(
        self, status: str = "pending", *, poster: str | None = None, limit: int = 100
    ) -> list[JobInfo]:
        """Jobs in the head's state (no proofs): `status` pending (by
        payment, the order miners take them: `raw["rank"]`), sealed,
        refunded or all; only `poster`'s when given."""
        return _jobs(self._call("GET", "/v1/jobs", params=_jobs_query(status, poster, limit)))

    def post_job(
        self,
        key: PrivateKey,
        a: npt.ArrayLike,
        b: npt.ArrayLike,
        *,
        amount: int,
        deadline: int,
        tip: int = 1,
        nonce: int | None = None,
    ) -> Submitted:
        """Uploads A and B and posts the job paying `amount` (base units)
        for C = A·B by block `deadline` (`matmul_job` checks them first);
        the job's id is the returned transaction id."""
        job = matmul_job(a, b, amount=amount, deadline=deadline)
        return self.send_job(key, job, tip=tip, nonce=nonce)

    def send_job(
        self,
        key: PrivateKey,
        job: tuple[MatMulPost, bytes, bytes],
        *,
        tip: int = 1,
        nonce: int | None = None,
    ) -> Submitted:
        """Uploads the blobs of a `matmul_job` and posts it (refused first,
        `tx-job-deadline`, if the next block would already pass its deadline)."""
        post, blob_a, blob_b = job
        _check_deadline(post, self.head().height)
        _stored(self.put_blob(blob_a), post.a)
        _stored(self.put_blob(blob_b), post.b)
        return self.send(key, post, tip=tip, nonce=nonce)

    def wait_for_job(
        self,
        job_id: str,
        *,
        timeout: float = 600.0,
        poll: float = 0.5,
        progress: Callable[[JobInfo | None], None] | None = None,
    ) -> JobInfo:
        """Polls until the job is sealed or refunded.

        Raises:
            TimeoutError: if it is neither within `timeout` seconds.
            JobFailed: ``sdk-job-dropped`` if a job seen before is gone
                from the node (its post dropped from the mempool unmined,
                e.g. past its deadline) for DROPPED_POLLS polls in a row.
        """
        dropped = JobFailed(
            "sdk-job-dropped", f"job {job_id} left the node's mempool without a block"
        )
        return _poll(
            lambda: self.job(job_id),
            lambda job: job.done,
            lambda job: f"job {job_id} still {job.status if job else 'unknown'}",
            timeout=timeout,
            poll=poll,
            progress=progress,
            dropped=dropped,
        )

    def product(self, job: JobInfo | str) -> npt.NDArray[np.int32]:
        """C = A·B of a sealed job (n×m int32), its bytes checked against
        the content id the chain recorded."""
        info = self.job(job) if isinstance(job, str) else job
        return _product(info, self.get_blob(_sealed(info)))

    def peers(self) -> list[PeerInfo]:
        return _peers(self._call("GET", "/v1/peers"))

    def openapi(self) -> dict[str, Any]:
        doc: dict[str, Any] = self._call("GET", "/openapi.json")
        return doc

    def send(
        self, key: PrivateKey, payload: Payload, *, tip: int = 1, nonce: int | None = None
    ) -> Submitted:
        """Builds, signs and submits a transaction from `key` (nonce from the
        node's head unless given)."""
        head = self.head()
        if nonce is None:
            nonce = self.account(key.address).next_nonce
        chain_id = self.info().chain_id
        tx = build_transaction(
            key, payload, chain_id=chain_id, nonce=nonce, base_fee=head.next_base_fee, tip=tip
        )
        return self.submit(tx)

    def wait_for_tx(
        self,
        tx_id: str,
        *,
        timeout: float = 30.0,
        poll: float = 0.1,
        progress: Callable[[TxStatus | None], None] | None = None,
    ) -> TxStatus:
        """Polls until the transaction is included.

        Raises:
            TimeoutError: if it is not included within `timeout` seconds.
        """
        return _poll(
            lambda: self.tx(tx_id),
            lambda status: status.status == "included",
            lambda _: f"transaction {tx_id} not included",
            timeout=timeout,
            poll=poll,
            progress=progress,
        )


class AsyncClient:
    """The same API for async code, on asyncio (notebooks) or trio::

    async with AsyncClient(url) as client:
        head = await client.head()
        async for event in client.subscribe(["heads"]):
            ...
    """

    def __init__(self, url: str = DEFAULT_URL, *, token: str | None = None, timeout: float = 10.0):
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _call(self, method: str, path: str, body: Any = None, params: Any = None) -> Any:
        try:
            response = await self._http.request(method, path, json=body, params=params)
        except httpx.TransportError as err:
            raise NodeUnreachable("sdk-unreachable", f"{self.url}: {err}") from err
        return _decode(response)

    async def info(self) -> NodeInfo:
        return NodeInfo.from_json(await self._call("GET", "/v1/node/info"))

    async def head(self) -> Head:
        return Head.from_json(await self._call("GET", "/v1/chain/head"))

    async def block(self, block: int | str, *, full_txs: bool = False) -> BlockInfo:
        params = {"txs": "full"} if full_txs else None
        return BlockInfo.from_json(await self._call("GET", _block_path(block), params=params))

    async def tx(self, tx_id: str) -> TxStatus:
        return TxStatus.from_json(await self._call("GET", f"/v1/chain/txs/{tx_id}"))

    async def account(self, address: str | bytes) -> AccountInfo:
        addr = address.hex() if isinstance(address, bytes) else address
        return AccountInfo.from_json(await self._call("GET", f"/v1/chain/accounts/{addr}"))

    async def submit(self, tx: Transaction) -> Submitted:
        doc = await self._call("POST", "/v1/mempool/txs", {"tx": tx.encode().hex()})
        return Submitted(doc["id"], doc["status"])

    async def mempool(self, limit: int = 100) -> MempoolInfo:
        return _mempool(await self._call("GET", "/v1/mempool/txs", params={"limit": limit}))

    async def put_blob(self, data: bytes) -> str:
        try:
            response = await self._http.post(
                "/v1/blobs", content=data, headers={"content-type": "application/octet-stream"}
            )
        except httpx.TransportError as err:
            raise NodeUnreachable("sdk-unreachable", f"{self.url}: {err}") from err
        return str(_decode(response)["id"])

    async def get_blob(self, blob_id: str) -> bytes:
        try:
            response = await self._http.get(f"/v1/blobs/{blob_id}")
        except httpx.TransportError as err:
            raise NodeUnreachable("sdk-unreachable", f"{self.url}: {err}") from err
        return _blob(response, blob_id)

    async def job(self, job_id: str) -> JobInfo:
        return JobInfo.from_json(await self._call("GET", f"/v1/jobs/{job_id}"))

    async def jobs(
        self, status: str = "pending", *, poster: str | None = None, limit: int = 100
    ) -> list[JobInfo]:
        query = _jobs_query(status, poster, limit)
        return _jobs(await self._call("GET", "/v1/jobs", params=query))

    async def post_job(
        self,
        key: PrivateKey,
        a: npt.ArrayLike,
        b: npt.ArrayLike,
        *,
        amount: int,
        deadline: int,
        tip: int = 1,
        nonce: int | None = None,
    ) -> Submitted:
        job = matmul_job(a, b, amount=amount, deadline=deadline)
        return await self.send_job(key, job, tip=tip, nonce=nonce)

    async def send_job(
        self,
        key: PrivateKey,
        job: tuple[MatMulPost, bytes, bytes],
        *,
        tip: int = 1,
        nonce: int | None = None,
    ) -> Submitted:
        post, blob_a, blob_b = job
        _check_deadline(post, (await self.head()).height)
        _stored(await self.put_blob(blob_a), post.a)
        _stored(await self.put_blob(blob_b), post.b)
        return await self.send(key, post, tip=tip, nonce=nonce)

    async def product(self, job: JobInfo | str) -> npt.NDArray[np.int32]:
        info = await self.job(job) if isinstance(job, str) else job
        return _product(info, await self.get_blob(_sealed(info)))

    async def peers(self) -> list[PeerInfo]:
        return _peers(await self._call("GET", "/v1/peers"))

    async def openapi(self) -> dict[str, Any]:
        doc: dict[str, Any] = await self._call("GET", "/openapi.json")
        return doc

    async def send(
        self, key: PrivateKey, payload: Payload, *, tip: int = 1, nonce: int | None = None
    ) -> Submitted:
        head = await self.head()
        if nonce is None:
            nonce = (await self.account(key.address)).next_nonce
        chain_id = (await self.info()).chain_id
        tx = build_transaction(
            key, payload, chain_id=chain_id, nonce=nonce, base_fee=head.next_base_fee, tip=tip
        )
        return await self.submit(tx)

    async def subscribe(self, topics: list[str]) -> AsyncIterator[dict[str, Any]]:
        """Events from ``/v1/ws`` (heads, txs, peers) until the node closes
        the socket; the first is ``{"type": "subscribed", ...}``."""
        parts = urlsplit(self.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        stream = await anyio.connect_tcp(host, port)
        ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        target = f"/v1/ws?topics={','.join(topics)}"
        async with stream:
            await stream.send(ws.send(wsproto.events.Request(host=f"{host}:{port}", target=target)))
            text = ""
            while True:
                try:
                    data = await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return
                ws.receive_data(data)
                for event in ws.events():
                    if isinstance(event, wsproto.events.RejectConnection):
                        raise ApiError(event.status_code, "api-ws-rejected", "subscription refused")
                    if isinstance(event, wsproto.events.CloseConnection):
                        return
                    if isinstance(event, wsproto.events.TextMessage):
                        text += event.data
                        if event.message_finished:
                            yield json.loads(text)
                            text = ""
