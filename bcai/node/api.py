"""The node's HTTP/JSON + WebSocket API (docs/api.md): chain (head, block,
transaction, account with proof), MatMul jobs (blobs, a job's record with
proof), mempool (submit, list), peers, node info,
subscriptions, and the OpenAPI document at /openapi.json.

Reads are served from LMDB on the event loop (microseconds each); the one
write, submitting a transaction, goes through the mempool and gossip.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from bcai import __version__, codec
from bcai.chain import (
    JOB_PENDING,
    JOB_REFUNDED,
    JOB_SEALED,
    Account,
    MatMulPost,
    StateProof,
    Transaction,
    tree_key,
    verify_account,
    verify_job,
)
from bcai.chain._state import Key
from bcai.node.asgi import ApiError, App, Receive, Request, Route, Scope, Send, openapi_document
from bcai.node.events import TOPICS
from bcai.node.mempool import MempoolReject
from bcai.node.schemas import SCHEMAS
from bcai.node.views import block_view, header_view, job_view, post_view, tx_view
from bcai.store import StoreError, blob_size, get_blob, put_blob

if TYPE_CHECKING:
    from bcai.node.service import Node

MAX_LIST = 1000
JOB_CODES = {"pending": JOB_PENDING, "sealed": JOB_SEALED, "refunded": JOB_REFUNDED}


def _hex(text: str, size: int, what: str) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise ApiError(400, "api-bad-param", f"{what} must be {2 * size} hex digits")
    return raw


def _proof_view(proof: StateProof) -> dict[str, Any]:
    return {
        "siblings": [s.hex() for s in proof.siblings],
        "terminal": [t.hex() for t in proof.terminal] if proof.terminal else None,
    }


def _not_found(err: StoreError) -> ApiError:
    return ApiError(404, err.code, err.message)


class NodeApi:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.routes = [
            Route(
                "GET",
                "/v1/node/info",
                self.info,
                "node, chain, head, peers, mining",
                response="NodeInfo",
            ),
            Route(
                "GET",
                "/v1/chain/head",
                self.head,
                "the head block's header",
                tag="chain",
                response="Header",
            ),
            Route(
                "GET",
                "/v1/chain/blocks/{id}",
                self.block,
                "a main-chain block by height or hash (?txs=full)",
                tag="chain",
                response="Block",
            ),
            Route(
                "GET",
                "/v1/chain/txs/{id}",
                self.tx,
                "a transaction: included (with its block) or pending",
                tag="chain",
                response="TxStatus",
            ),
            Route(
                "GET",
                "/v1/chain/accounts/{address}",
                self.account,
                "an account with its state proof",
                tag="chain",
                response="Account",
            ),
            Route(
                "POST",
                "/v1/mempool/txs",
                self.submit,
                "submit a signed transaction",
                write=True,
                status=202,
                tag="mempool",
                response="TxSubmitted",
                body="TxSubmit",
            ),
            Route(
                "GET",
                "/v1/mempool/txs",
                self.pending,
                "pending transactions (?limit=)",
                tag="mempool",
                response="Mempool",
            ),
            Route(
                "POST",
                "/v1/blobs",
                self.put_blob,
                "store a blob (raw bytes: a MatMul job's matrix); returns its content id",
                write=True,
                status=201,
                tag="blobs",
                response="BlobStored",
                max_body=node.config.api.max_blob_bytes,
            ),
            Route(
                "GET",
                "/v1/blobs/{id}",
                self.get_blob,
                "a blob's raw bytes by content id",
                tag="blobs",
                content_type="application/octet-stream",
            ),
            Route(
                "GET",
                "/v1/jobs",
                self.jobs,
                "MatMul jobs in the head's state (?status=pending|sealed|refunded|all, "
                "?poster=, ?limit=): pending ones in the order miners take them",
                tag="jobs",
                response="Jobs",
            ),
            Route(
                "GET",
                "/v1/jobs/{id}",
                self.job,
                "a MatMul job: pending, sealed (with C's id) or refunded, with its state proof",
                tag="jobs",
                response="Job",
            ),
            Route("GET", "/v1/peers", self.peers, "connected peers", tag="net", response="Peers"),
            Route("GET", "/openapi.json", self.openapi, "this document"),
        ]
        self.app = App(
            self.routes,
            websockets={"/v1/ws": self.websocket},
            token=node.api_token,
            max_body_bytes=node.config.api.max_body_bytes,
        )
        self._openapi = openapi_document(
            self.routes,
            SCHEMAS,
            {"title": "bcai node API", "version": __version__, "description": "docs/api.md"},
        )

    # ------------------------------------------------------------ blobs

    async def put_blob(self, req: Request) -> dict[str, Any]:
        store = self.node.runtime.store
        cid = await trio.to_thread.run_sync(put_blob, store, req.body)
        return {"id": cid.hex(), "size": len(req.body)}

    async def get_blob(self, req: Request) -> bytes:
        raw = req.params["id"]
        if len(raw) != 64 or any(c not in "0123456789abcdef" for c in raw):
            raise ApiError(400, "api-bad-param", "a blob id is 64 lowercase hex digits")
        data = await trio.to_thread.run_sync(get_blob, self.node.runtime.store, bytes.fromhex(raw))
        if data is None:
            raise ApiError(404, "blob-unknown", f"no blob {raw}")
        return data

    # ------------------------------------------------------------ node

    async def info(self, _req: Request) -> dict[str, Any]:
        n = self.node
        rt = n.runtime
        head = rt.store.head
        producer = n.producer
        return {
            "version": __version__,
            "chain_id": rt.store.genesis.params.chain_id,
            "genesis": rt.store.genesis_id.hex(),
            "peer_id": rt.host.peer_id.hex(),
            "p2p_port": rt.host.listen_port,
            "advertise": list(rt.host.advertise),
            "head": {"height": head.height, "hash": head.block_hash().hex()},
            "peers": len(rt.host.conns),
            "mempool": {"count": len(rt.mempool), "bytes": rt.mempool.bytes},
            "mining": {
                "enabled": producer is not None,
                "producer": n.producer_key.address.hex(),
                "blocks": producer.stats.blocks if producer else 0,
                "hashrate": round(producer.stats.hashrate(), 1) if producer else 0.0,
            },
            "uptime_s": round(time.monotonic() - n.started_at, 3),
        }

    async def peers(self, _req: Request) -> dict[str, Any]:
        now = time.time()
        out = []
        for pid, conn in self.node.runtime.host.conns.items():
            info = conn.info
            out.append(
                {
                    "peer": pid.hex(),
                    "ip": info.ip,
                    "address": f"{conn.address[0]}:{conn.address[1]}" if conn.address else None,
                    "inbound": info.inbound,
                    "relayed": conn.relayed_via is not None,
                    "connected_s": round(now - info.connected_at, 3),
                    "ping_ms": None if info.ping_s == float("inf") else round(info.ping_s * 1e3, 3),
                }
            )
        return {"count": len(out), "peers": out}

    async def openapi(self, _req: Request) -> dict[str, Any]:
        return self._openapi

    # ------------------------------------------------------------ chain

    async def head(self, _req: Request) -> dict[str, Any]:
        rt = self.node.runtime
        view = header_view(rt.store.head)
        view["next_base_fee"] = rt.chain.base_fee()
        return view

    async def block(self, req: Request) -> dict[str, Any]:
        store = self.node.runtime.store
        ident = req.params["id"]
        full = req.query.get("txs", "ids") == "full"
        try:
            if ident.isdigit() and len(ident) < 20:
                block = store.get_block_by_height(int(ident))
            else:
                block_hash = _hex(ident, 32, "a block id (height or hash)")
                if not store.has_block(block_hash):
                    raise ApiError(404, "store-not-found", f"no block {ident}")
                block = store.get_block(block_hash)
        except StoreError as err:
            raise _not_found(err) from err
        return block_view(block, full_txs=full)

    async def tx(self, req: Request) -> dict[str, Any]:
        rt = self.node.runtime
        tx_id = _hex(req.params["id"], 32, "a transaction id")
        entry = rt.mempool.by_id.get(tx_id)
        if entry is not None:
            return {"status": "pending", "tx": tx_view(entry.tx)}
        try:
            tx, block_hash, index = rt.store.get_transaction(tx_id)
        except StoreError as err:
            raise _not_found(err) from err
        height = rt.store.get_header(block_hash).height
        return {
            "status": "included",
            "block": block_hash.hex(),
            "height": height,
            "index": index,
            "confirmations": rt.store.head.height - height + 1,
            "tx": tx_view(tx),
        }

    async def account(self, req: Request) -> dict[str, Any]:
        addr = _hex(req.params["address"], 20, "an address")
        doc = await self._read_state(self._read_account, addr)
        if doc is None:
            raise ApiError(503, "api-busy", "the account's proof did not verify; try again")
        return doc

    async def job(self, req: Request) -> dict[str, Any]:
        job_id = _hex(req.params["id"], 32, "a job id (its posting transaction's id)")
        doc = await self._read_state(self._read_job, job_id)
        if doc is not None:
            return doc
        raise ApiError(
            404, "job-unknown", f"no job {job_id.hex()} in the head's state nor in the mempool"
        )

    async def jobs(self, req: Request) -> dict[str, Any]:
        status = req.query.get("status", "pending")
        if status not in ("pending", "sealed", "refunded", "all"):
            raise ApiError(400, "api-bad-param", "status is pending, sealed, refunded or all")
        poster = req.query.get("poster")
        who = _hex(poster, 20, "an address") if poster is not None else None
        limit = req.query_int("limit", 100, 1, MAX_LIST)
        store = self.node.runtime.store

        def listed() -> dict[str, Any]:
            with store.lock:  # the state's jobs change under imports on worker threads
                return self._list_jobs(status, who, limit)

        # every job the chain has seen: off the event loop
        doc: dict[str, Any] = await trio.to_thread.run_sync(listed)
        return doc

    def _list_jobs(self, status: str, poster: bytes | None, limit: int) -> dict[str, Any]:
        """Jobs of the head's state. Pending ones a producer could still
        seal (deadline not before the next block) are ranked among all such
        jobs by payment, then id, highest first — the order producers try
        them — whoever posted them; pending ones past that are `expiring`
        (refunded by the next block). The returned page says whether this
        node holds each pending job's A and B (`blobs_here`: a node seals
        only jobs whose matrices it holds). `count` is every match, before
        `limit`."""
        store = self.node.runtime.store
        head = store.head
        jobs = store.state.jobs
        live = sorted(
            (
                (job.amount, job_id)
                for job_id, job in jobs.items()
                if job.status == JOB_PENDING and job.deadline > head.height
            ),
            reverse=True,
        )
        rank = {job_id: place for place, (_, job_id) in enumerate(live, 1)}
        wanted = None if status == "all" else JOB_CODES[status]
        matches = [
            job_id
            for job_id, job in jobs.items()
            if (wanted is None or job.status == wanted) and (poster is None or job.poster == poster)
        ]
        matches.sort(key=lambda job_id: (rank.get(job_id, len(rank) + 1), job_id))
        views = []
        for job_id in matches[:limit]:
            job = jobs[job_id]
            view = job_view(job_id, job)
            if job.status == JOB_PENDING:
                if job_id in rank:
                    view["rank"] = rank[job_id]
                else:
                    view["expiring"] = True
                view["blobs_here"] = all(
                    blob_size(store, blob) is not None for blob in (job.post.a, job.post.b)
                )
            views.append(view)
        return {"height": head.height, "count": len(matches), "jobs": views}

    async def _read_state(
        self, read: Callable[[bytes], dict[str, Any] | None], key: bytes
    ) -> dict[str, Any] | None:
        """`read(key)` of the head's state with its proof. The head and the
        mempool agree meanwhile (not between an import that reorged and the
        return of its orphaned transactions), and the state tree, shared
        with imports on worker threads, is read under the store's lock:
        inline when free, else from a thread."""
        store = self.node.runtime.store

        def locked() -> dict[str, Any] | None:
            with store.lock:
                return read(key)

        async with self.node.runtime.chain.write_lock:
            if store.lock.acquire(blocking=False):
                try:
                    return read(key)
                finally:
                    store.lock.release()
            return await trio.to_thread.run_sync(locked)

    def _read_job(self, job_id: bytes) -> dict[str, Any] | None:
        """The job's view with its proof; its post's view, "unconfirmed",
        when the head's state has no such job (proved absent) but the
        mempool holds the post; else None."""
        store = self.node.runtime.store
        head = store.head
        job = store.read_job(job_id)
        proof = self._prove(("job", job_id, 0))
        if not verify_job(head.state_root, job_id, job, proof):
            raise ApiError(503, "api-busy", "the job's proof did not verify; try again")
        if job is None:
            entry = self.node.runtime.mempool.by_id.get(job_id)
            if entry is None or not isinstance(entry.tx.body.payload, MatMulPost):
                return None
            post = entry.tx.body.payload
            return {**post_view(job_id, entry.tx.sender_address, post), "status": "unconfirmed"}
        return {
            **job_view(job_id, job),
            "height": head.height,
            "block": head.block_hash().hex(),
            "state_root": head.state_root.hex(),
            "proof": _proof_view(proof),
        }

    def _prove(self, key: Key) -> StateProof:
        """The proof of `key` against the head's state root."""
        store = self.node.runtime.store
        siblings, terminal = store.state.tree.prove(store.head.state_root, tree_key(key))
        return StateProof(tuple(siblings), terminal)

    def _read_account(self, addr: bytes) -> dict[str, Any] | None:
        store = self.node.runtime.store
        head = store.head
        account = store.read_account(addr)
        proof = self._prove(("account", addr, 0))
        if not verify_account(head.state_root, addr, account, proof):
            return None
        return {
            "address": addr.hex(),
            "balance": account.balance,
            "nonce": account.nonce,
            "next_nonce": self._next_nonce(addr, account.nonce),
            "stake": store.read_stake(addr),
            "height": head.height,
            "block": head.block_hash().hex(),
            "state_root": head.state_root.hex(),
            "proof": _proof_view(proof),
        }

    def _next_nonce(self, addr: bytes, nonce: int) -> int:
        """The nonce after this sender's pending run in the mempool."""
        queue = self.node.runtime.mempool.by_sender.get(addr, {})
        while nonce in queue:
            nonce += 1
        return nonce

    # ------------------------------------------------------------ mempool

    async def submit(self, req: Request) -> dict[str, Any]:
        doc = req.json()
        raw = doc.get("tx")
        if not isinstance(raw, str):
            raise ApiError(400, "api-bad-field", "'tx' must be the signed transaction as hex")
        try:
            tx = Transaction.decode(bytes.fromhex(raw))
        except ValueError as err:
            raise ApiError(400, "api-bad-field", "'tx' is not hex") from err
        except codec.DecodeError as err:
            raise ApiError(
                400, err.code, f"the transaction does not decode: {err.message}"
            ) from err
        try:
            tx_id = tx.tx_id()
            self.node.runtime.chain.publish_tx(tx)
        except MempoolReject as err:
            raise ApiError(422, err.code, err.message) from err
        self.node.announce_tx(tx)
        return {"id": tx_id.hex(), "status": "pending"}

    async def pending(self, req: Request) -> dict[str, Any]:
        pool = self.node.runtime.mempool
        limit = req.query_int("limit", 100, 1, MAX_LIST)
        return {
            "count": len(pool),
            "bytes": pool.bytes,
            "txs": [
                {
                    "id": e.tx_id.hex(),
                    "sender": e.sender.hex(),
                    "nonce": e.nonce,
                    "max_fee": e.tx.body.max_fee,
                    "tip": e.tx.body.tip,
                    "weight": e.weight,
                }
                for e in pool.pending(limit)
            ],
        }

    # ------------------------------------------------------------ websocket

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``/v1/ws?topics=heads,txs,peers``: JSON events until either side closes."""
        first = await receive()
        if first["type"] != "websocket.connect":
            return
        query = dict(
            p.split("=", 1) for p in scope.get("query_string", b"").decode().split("&") if "=" in p
        )
        topics = frozenset(t for t in query.get("topics", ",".join(TOPICS)).split(",") if t)
        unknown = topics - set(TOPICS)
        if unknown or not topics:
            await send({"type": "websocket.close", "code": 4400})
            return
        sub = self.node.events.subscribe(topics)
        if sub is None:
            await send({"type": "websocket.close", "code": 1013})
            return
        await send({"type": "websocket.accept"})
        try:
            await send(
                {
                    "type": "websocket.send",
                    "text": json.dumps({"type": "subscribed", "topics": sorted(topics)}),
                }
            )
            async with trio.open_nursery() as nursery:

                async def until_closed() -> None:
                    while (await receive())["type"] != "websocket.disconnect":
                        pass
                    nursery.cancel_scope.cancel()

                nursery.start_soon(until_closed)
                async for event in sub.receive:
                    await send({"type": "websocket.send", "text": json.dumps(event)})
                code = 1013 if sub.overflowed else 1001
                await send({"type": "websocket.close", "code": code})
                nursery.cancel_scope.cancel()
        finally:
            self.node.events.unsubscribe(sub)


def account_from_view(view: dict[str, Any]) -> tuple[Account, StateProof]:
    """The account and proof of an account response (for clients)."""
    proof = view["proof"]
    terminal = proof["terminal"]
    return (
        Account(balance=view["balance"], nonce=view["nonce"]),
        StateProof(
            tuple(bytes.fromhex(s) for s in proof["siblings"]),
            (bytes.fromhex(terminal[0]), bytes.fromhex(terminal[1])) if terminal else None,
        ),
    )
