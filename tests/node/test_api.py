"""The node's API on a real node in this process: real sockets on
127.0.0.1, a real LMDB store, hypercorn serving the app. Malformed requests
get JSON errors with codes; transactions submitted through the SDK are
mined; account proofs verify; WebSocket subscribers hear new heads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from bcai.chain import COIN, Transfer
from bcai.node.datadir import DataDirError
from bcai.node.genesis_file import dev_wallet_key
from bcai.node.service import Node
from bcai.sdk import ApiError, AsyncClient, build_transaction
from tests.node.conftest import node_config


async def error_of(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"]["message"], str)
    return response.status_code, body["error"]["code"]


async def test_malformed_requests_get_json_errors(node: Node) -> None:
    async with httpx.AsyncClient(base_url=node.info["api"]) as http:
        cases: list[tuple[Any, tuple[int, str]]] = [
            (http.get("/v1/nope"), (404, "api-not-found")),
            (http.delete("/v1/chain/head"), (405, "api-method-not-allowed")),
            (http.post("/v1/mempool/txs", content=b"{not json"), (400, "api-bad-json")),
            (http.post("/v1/mempool/txs", json=[1]), (400, "api-bad-json")),
            (http.post("/v1/mempool/txs", json={"tx": 5}), (400, "api-bad-field")),
            (http.post("/v1/mempool/txs", json={"tx": "zz"}), (400, "api-bad-field")),
            (http.post("/v1/mempool/txs", json={"tx": "00"}), (400, "codec-truncated")),
            (http.post("/v1/mempool/txs", content=b"x" * 5000), (413, "api-body-too-large")),
            (http.get("/v1/chain/blocks/99999"), (404, "store-not-found")),
            (http.get("/v1/chain/blocks/xyz"), (400, "api-bad-param")),
            (http.get("/v1/chain/txs/" + "ab" * 32), (404, "store-not-found")),
            (http.get("/v1/chain/accounts/1234"), (400, "api-bad-param")),
            (http.get("/v1/mempool/txs?limit=0"), (400, "api-bad-param")),
        ]
        for request, expected in cases:
            got = await error_of(await request)
            assert got[0] == expected[0], (expected, got)
            assert got[1] == expected[1] or (
                expected[1] == "codec-truncated" and got[1].startswith("codec-")
            )


async def test_rejected_transaction_has_its_reason(node: Node) -> None:
    key = dev_wallet_key(0)
    async with AsyncClient(node.info["api"]) as client:
        head = await client.head()
        stale = build_transaction(
            key,
            Transfer(to=bytes(20), amount=1),
            chain_id=1337,
            nonce=0,
            base_fee=head.next_base_fee,
            tip=0,
            max_fee=0,
        )
        with pytest.raises(ApiError) as info:
            await client.submit(stale)
        assert (info.value.status, info.value.code) == (422, "mempool-fee-too-low")
        wrong_chain = build_transaction(
            key, Transfer(to=bytes(20), amount=1), chain_id=7, nonce=0, base_fee=5
        )
        with pytest.raises(ApiError) as info:
            await client.submit(wrong_chain)
        assert info.value.code == "tx-wrong-chain"


async def test_transfer_is_mined_and_proven(node: Node) -> None:
    key, to = dev_wallet_key(0), dev_wallet_key(1).address
    async with AsyncClient(node.info["api"]) as client:
        before = await client.account(to)
        sent = await client.send(key, Transfer(to=to, amount=3 * COIN))
        pending = await client.tx(sent.id)
        assert pending.status in ("pending", "included")
        with trio.fail_after(20):
            while (status := await client.tx(sent.id)).status != "included":
                await trio.sleep(0.05)
        assert status.height is not None and status.tx["payload"]["amount"] == 3 * COIN
        block = await client.block(status.height, full_txs=True)
        assert [t["id"] for t in block.txs] == [sent.id]
        after = await client.account(to)
        assert after.balance == before.balance + 3 * COIN
        assert after.verify()
        forged = type(after)(**{**after.__dict__, "balance": after.balance + 1})
        assert not forged.verify()
        info = await client.info()
        assert info.mining["blocks"] >= 1 and info.head_height >= status.height
        mempool = await client.mempool()
        assert mempool.count == 0


async def test_openapi_describes_every_route(node: Node) -> None:
    async with AsyncClient(node.info["api"]) as client:
        doc = await client.openapi()
    assert doc["openapi"].startswith("3.")
    assert node.api is not None
    for route in node.api.routes:
        assert route.method.lower() in doc["paths"][route.path]
    submit = doc["paths"]["/v1/mempool/txs"]["post"]
    assert submit["security"] == [{"bearer": []}]
    assert "Error" in doc["components"]["schemas"]


async def test_websocket_hears_new_heads(node: Node) -> None:
    async with AsyncClient(node.info["api"]) as client:
        events = client.subscribe(["heads"])
        first = await events.__anext__()
        assert first == {"type": "subscribed", "topics": ["heads"]}
        with trio.fail_after(10):
            head = await events.__anext__()
        assert head["type"] == "head" and head["height"] >= 1
        await events.aclose()
    async with httpx.AsyncClient(base_url=node.info["api"]) as http:
        response = await http.get("/v1/ws")  # not an upgrade: no HTTP route there
        assert response.status_code == 404


async def test_metrics_endpoint(node: Node) -> None:
    with trio.fail_after(10):
        while node.runtime.store.head.height < 1:
            await trio.sleep(0.05)
    async with httpx.AsyncClient() as http:
        text = (await http.get(node.info["metrics"])).text
    for name in (
        "bcai_peers",
        "bcai_head_height",
        "bcai_block_import_seconds_count",
        "bcai_mempool_txs",
        "bcai_gossip_events_total",
        "bcai_mining_hashrate",
    ):
        assert f"\n{name}" in "\n" + text, name
    height = next(line for line in text.splitlines() if line.startswith("bcai_head_height "))
    assert int(height.split()[1]) >= 1


async def test_writes_need_the_token_when_bound_beyond_loopback(tmp_path: Path) -> None:
    cfg = node_config(tmp_path, "api.listen=0.0.0.0:0", "mining.enabled=false")
    async with trio.open_nursery() as nursery:
        n = Node(cfg)
        await nursery.start(n.run)
        token = (tmp_path / "api.token").read_text().strip()
        url = n.info["api"].replace("0.0.0.0", "127.0.0.1")
        async with httpx.AsyncClient(base_url=url) as http:
            refused = await http.post("/v1/mempool/txs", json={"tx": "00"})
            assert await error_of(refused) == (401, "api-unauthorized")
            wrong = await http.post(
                "/v1/mempool/txs", json={"tx": "00"}, headers={"authorization": "Bearer nope"}
            )
            assert wrong.status_code == 401
            allowed = await http.post(
                "/v1/mempool/txs", json={"tx": "00"}, headers={"authorization": f"Bearer {token}"}
            )
            assert allowed.status_code == 400  # past auth, then the bad transaction
            assert (await http.get("/v1/chain/head")).status_code == 200  # reads stay open
        await n.shutdown()


async def test_second_node_on_the_same_data_dir_is_refused(node: Node, tmp_path: Path) -> None:
    with pytest.raises(DataDirError) as info:
        Node(node_config(tmp_path))
    assert info.value.code == "datadir-locked"
