"""The genesis file: a `Genesis` as readable JSON (docs/config.md).

    {"params": {"chain_id": 1337, "target_spacing_ms": 1000, ...,
                "genesis_target": "<hex>", "max_target": "<hex>"},
     "timestamp_ms": 1700000000000,
     "allocations": [{"address": "<40 hex>", "balance": 1000, "stake": 0}],
     "extra": "<hex>"}

256-bit targets are hex strings; every other number is a JSON integer.
Every field is required, so a file means the same chain to every reader.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from bcai import codec, pouw
from bcai.chain import Allocation, ChainParams, Genesis, devnet_params
from bcai.crypto import PrivateKey, blake3
from bcai.errors import BcaiError

HEX_INT_FIELDS = {"genesis_target", "max_target"}


class GenesisFileError(BcaiError):
    """Codes: ``genesis-not-found``, ``genesis-bad-file``, ``genesis-bad-seal``."""


def genesis_to_json(genesis: Genesis) -> dict[str, Any]:
    params = {
        f.name: hex(v) if f.name in HEX_INT_FIELDS else v
        for f in dataclasses.fields(ChainParams)
        for v in [getattr(genesis.params, f.name)]
    }
    return {
        "params": params,
        "timestamp_ms": genesis.timestamp_ms,
        "allocations": [
            {"address": a.address.hex(), "balance": a.balance, "stake": a.stake}
            for a in genesis.allocations
        ],
        "extra": genesis.extra.hex(),
        "genesis_id": genesis.object_id().hex(),
    }


def genesis_from_json(doc: dict[str, Any]) -> Genesis:
    """Raises GenesisFileError("genesis-bad-file") on any missing or bad field."""
    try:
        raw = doc["params"]
        params = ChainParams(
            **{
                f.name: int(raw[f.name], 16) if f.name in HEX_INT_FIELDS else int(raw[f.name])
                for f in dataclasses.fields(ChainParams)
            }
        )
        allocations = tuple(
            Allocation(
                address=bytes.fromhex(a["address"]),
                balance=int(a["balance"]),
                stake=int(a["stake"]),
            )
            for a in doc["allocations"]
        )
        genesis = Genesis(
            params=params,
            timestamp_ms=int(doc["timestamp_ms"]),
            allocations=allocations,
            extra=bytes.fromhex(doc.get("extra", "")),
        )
        genesis = Genesis.decode(genesis.encode())  # every range check of the codec
    except (KeyError, TypeError, ValueError, codec.DecodeError, codec.EncodeError) as err:
        raise GenesisFileError("genesis-bad-file", f"{type(err).__name__}: {err}") from err
    claimed = doc.get("genesis_id")
    if claimed is not None and claimed != genesis.object_id().hex():
        raise GenesisFileError(
            "genesis-bad-file", f"genesis_id {claimed[:16]}… does not match the file's contents"
        )
    return genesis


def load_genesis(path: Path) -> Genesis:
    if not path.is_file():
        raise GenesisFileError(
            "genesis-not-found",
            f"no genesis file at {path}; copy the network's genesis.json there, "
            "or run `bcai config init --devnet` / `bcai devnet up`",
        )
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise GenesisFileError("genesis-bad-file", f"{path}: {err}") from err
    if not isinstance(doc, dict):
        raise GenesisFileError("genesis-bad-file", f"{path}: not a JSON object")
    return genesis_from_json(doc)


def save_genesis(path: Path, genesis: Genesis) -> None:
    path.write_text(json.dumps(genesis_to_json(genesis), indent=2) + "\n")


DEV_WALLET_BALANCE = 1_000_000 * 10**9


def dev_wallet_key(index: int) -> PrivateKey:
    """The i-th devnet wallet: a well-known key (never use it for real money)."""
    return PrivateKey(blake3(b"bcai devnet wallet" + index.to_bytes(4, "big")))


DEVNET_POUW = pouw.DEVNET  # the devnet's PoUW parameters


def devnet_genesis(
    wallets: int = 4,
    *,
    spacing_ms: int = 1_000,
    timestamp_ms: int = 1_700_000_000_000,
    chain_id: int = 1337,
    seal: str = "pouw",
) -> Genesis:
    """A local chain: easy targets, `wallets` prefunded dev wallets, sealed
    by proof of useful work (`seal="pouw"`, docs/pouw.md) or by the hash
    seal (`"hash"`)."""
    if seal not in ("pouw", "hash"):
        raise GenesisFileError("genesis-bad-seal", f"seal {seal!r}: pouw or hash")
    extra = pouw.genesis_extra(DEVNET_POUW, b"bcai devnet") if seal == "pouw" else b"bcai devnet"
    return Genesis(
        params=devnet_params(chain_id, target_spacing_ms=spacing_ms),
        timestamp_ms=timestamp_ms,
        allocations=tuple(
            Allocation(address=dev_wallet_key(i).address, balance=DEV_WALLET_BALANCE, stake=0)
            for i in range(wallets)
        ),
        extra=extra,
    )
