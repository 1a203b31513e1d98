"""Shared by the node tests: a node's config on a fresh PoUW devnet genesis
(real sockets on 127.0.0.1, ports from the OS), and a running node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from bcai.node.config import NodeConfig, flag_layer, load_config
from bcai.node.genesis_file import devnet_genesis, save_genesis
from bcai.node.service import Node


def node_config(tmp_path: Path, *extra: str) -> NodeConfig:
    save_genesis(tmp_path / "genesis.json", devnet_genesis(2, timestamp_ms=1_700_000_000_000))
    sets = [
        "net.listen=127.0.0.1:0",
        "api.listen=127.0.0.1:0",
        "metrics.listen=127.0.0.1:0",
        "net.port_mapping=false",
        "mining.enabled=true",
        "mining.period_s=0.2",
        "api.max_body_bytes=4096",
        *extra,
    ]
    return load_config(tmp_path, environ={}, flags=flag_layer(sets))


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    async with trio.open_nursery() as nursery:
        n = Node(node_config(tmp_path))
        await nursery.start(n.run)
        yield n
        await n.shutdown()
