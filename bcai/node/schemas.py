"""JSON schemas of the API's bodies, for the OpenAPI document (the shapes
are built in bcai.node.views and bcai.node.api)."""

from __future__ import annotations

from typing import Any

HEX = {"type": "string", "pattern": "^[0-9a-f]*$"}
INT = {"type": "integer", "minimum": 0}


def _obj(required: dict[str, Any], **optional: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": sorted(required),
        "properties": {**required, **optional},
    }


HEADER_FIELDS = {
    "hash": HEX,
    "height": INT,
    "parent": HEX,
    "timestamp_ms": INT,
    "chain_id": INT,
    "version": INT,
    "tx_root": HEX,
    "state_root": HEX,
    "base_fee": INT,
    "target": {"type": "string", "description": "256-bit target, 0x-prefixed hex"},
    "producer": HEX,
    "seal": HEX,
    "signature": HEX,
}

POST_FIELDS = {"a": HEX, "b": HEX, "n": INT, "k": INT, "m": INT, "deadline": INT}  # a MatMul job

TX = _obj(
    {
        "id": HEX,
        "sender": HEX,
        "sender_key": HEX,
        "nonce": INT,
        "max_fee": INT,
        "tip": INT,
        "chain_id": INT,
        "weight": INT,
        "signature": HEX,
        "raw": HEX,
        "payload": _obj(
            {
                "kind": {"enum": ["transfer", "stake", "unstake", "burn", "matmul_post"]},
                "amount": INT,
            },
            to=HEX,
            **POST_FIELDS,
        ),
    }
)

PROOF = _obj(
    {
        "siblings": {"type": "array", "items": HEX},
        "terminal": {"oneOf": [{"type": "null"}, {"type": "array", "items": HEX}]},
    }
)

AT_HEAD = {"height": INT, "block": HEX, "state_root": HEX, "proof": PROOF}  # a proved read

SCHEMAS: dict[str, Any] = {
    "BlobStored": _obj({"id": HEX, "size": INT}),
    "Error": _obj({"error": _obj({"code": {"type": "string"}, "message": {"type": "string"}})}),
    "Header": _obj(HEADER_FIELDS, next_base_fee=INT),
    "Block": _obj(
        {**HEADER_FIELDS, "tx_count": INT, "txs": {"type": "array", "items": {"oneOf": [HEX, TX]}}}
    ),
    "Transaction": TX,
    "TxStatus": _obj(
        {"status": {"enum": ["pending", "included"]}, "tx": TX},
        block=HEX,
        height=INT,
        index=INT,
        confirmations=INT,
    ),
    "Account": _obj(
        {
            "address": HEX,
            "balance": INT,
            "nonce": INT,
            "next_nonce": INT,
            "stake": INT,
            **AT_HEAD,
        }
    ),
    "Job": _obj(
        {
            "id": HEX,
            "status": {"enum": ["unconfirmed", "pending", "sealed", "refunded"]},
            "poster": HEX,
            "amount": INT,
            **POST_FIELDS,
        },
        solver=HEX,
        product=HEX,
        rank=INT,
        expiring={"type": "boolean"},
        blobs_here={"type": "boolean"},
        **AT_HEAD,
    ),
    "Jobs": _obj(
        {
            "height": INT,
            "count": INT,
            "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}},
        }
    ),
    "TxSubmit": _obj({"tx": HEX}),
    "TxSubmitted": _obj({"id": HEX, "status": {"const": "pending"}}),
    "Mempool": _obj(
        {"count": INT, "bytes": INT, "txs": {"type": "array", "items": {"type": "object"}}}
    ),
    "Peers": _obj({"count": INT, "peers": {"type": "array", "items": {"type": "object"}}}),
    "NodeInfo": _obj(
        {
            "version": {"type": "string"},
            "chain_id": INT,
            "genesis": HEX,
            "peer_id": HEX,
            "p2p_port": INT,
            "head": _obj({"height": INT, "hash": HEX}),
            "peers": INT,
            "mempool": _obj({"count": INT, "bytes": INT}),
            "mining": {"type": "object"},
            "uptime_s": {"type": "number"},
        }
    ),
}
