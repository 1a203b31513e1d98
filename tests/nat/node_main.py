"""One node in its own process (and network namespace), driven by JSON lines.

    python -m tests.nat.node_main CONFIG.json

stdout: one JSON object per line, `{"event": name, ...}`; a command's answer
is `{"event": "reply", "id": n, "ok": bool, ...}`. stdin: commands, one JSON
object per line, `{"id": n, "cmd": name, ...}` (see `COMMANDS`).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import trio

from bcai.chain import Genesis
from bcai.crypto import PrivateKey
from bcai.net import HostConfig, NodeKeys, ScoreParams
from bcai.net._dht import content_key
from bcai.net._discovery import DiscoveryConfig
from bcai.net._kademlia import Contact
from bcai.net._relay import RelayLimits
from bcai.node.runtime import NodeRuntime, RuntimeConfig


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def build(cfg: dict[str, Any]) -> NodeRuntime:
    genesis = Genesis.decode(bytes.fromhex(cfg["genesis"]))
    host = HostConfig(
        listen_host=cfg.get("listen_host", "0.0.0.0"),
        listen_port=cfg.get("listen_port", 0),
        advertise=tuple(cfg.get("advertise", ())),
        bootstrap=tuple((h, p) for h, p in cfg.get("bootstrap", ())),
        max_per_ip=cfg.get("max_per_ip", 2),
        max_per_subnet24=cfg.get("max_per_ip", 4),
        target_outbound=cfg.get("target_outbound", 8),
        reuse_port=cfg.get("reuse_port", True),
        keepalive_s=cfg.get("keepalive_s", 30.0),
        ping_timeout_s=cfg.get("ping_timeout_s", 10.0),
        score=ScoreParams(ip_colocation_whitelist=frozenset(cfg.get("colocation_ok", ()))),
    )
    runtime_cfg = RuntimeConfig(
        data_dir=Path(cfg["data_dir"]),
        genesis=genesis,
        host=host,
        relay=RelayLimits(
            enabled=cfg.get("relay", False),
            reservation_ttl_s=cfg.get("reservation_ttl_s", 3600.0),
        ),
        sync_interval_s=cfg.get("sync_interval_s", 1.0),
        nat_interval_s=cfg.get("nat_interval_s", 3600.0),
        discovery=DiscoveryConfig(allow_local=True),  # the harness uses 10/8 and 100.64/10
        dht_server=cfg.get("dht_server"),
    )
    return NodeRuntime(NodeKeys.generate(), runtime_cfg, on_event=emit)


async def command(node: NodeRuntime, msg: dict[str, Any], producer: PrivateKey) -> dict[str, Any]:
    cmd = msg["cmd"]
    host = node.host
    if cmd == "status":
        return {
            "height": node.store.head.height,
            "head": node.store.head_hash.hex(),
            "peers": [
                {"peer": pid.hex(), "relayed": c.relayed_via is not None}
                for pid, c in host.conns.items()
            ],
            "reach": node.nat.reach.value,
            "observed": node.nat.observed,
            "punch": vars(node.puncher.stats),
            "relay": {
                "circuits": node.relay.stats.circuits,
                "refused": node.relay.stats.refused,
                "closed": node.relay.stats.closed,
                "open": len(node.relay.hops) // 2,
                # peers holding an unexpired reservation here (the relay's clock)
                "reserved": [
                    pid.hex()
                    for pid, until in node.relay.reservations.items()
                    if until > node.relay.clock()
                ],
            },
        }
    if cmd == "produce":
        blocks = [await node.produce(producer) for _ in range(msg.get("n", 1))]
        return {"height": node.store.head.height, "hashes": [b.block_hash().hex() for b in blocks]}
    if cmd == "probe":
        nat = await node.check_reachability()
        return {"reach": nat.reach.value, "observed": nat.observed, "relays": len(nat.relays)}
    if cmd == "dial":
        return {"peer": (await host.dial(msg["host"], msg["port"])).hex()}
    if cmd == "connect":
        direct = await node.connect(
            bytes.fromhex(msg["peer"]), bytes.fromhex(msg["relay"]), punch=msg.get("punch", True)
        )
        return {"direct": direct}
    if cmd == "disconnect":
        await host.disconnect(bytes.fromhex(msg["peer"]), "test")
        return {}
    if cmd == "provide":
        return {"accepted": await node.dht.provide(content_key(msg["name"].encode()))}
    if cmd == "find_providers":
        found = await node.dht.find_providers(content_key(msg["name"].encode()))
        return {
            "providers": [{"peer": c.peer_id.hex(), "host": c.host, "port": c.port} for c in found]
        }
    if cmd == "reach":
        contact = Contact(bytes.fromhex(msg["peer"]), msg["host"], msg["port"])
        return {"direct": await node.reach(contact, punch=msg.get("punch", True))}
    if cmd == "publish":
        return {"id": host.publish(msg["topic"], bytes.fromhex(msg["data"])).hex()}
    raise ValueError(f"unknown command {cmd!r}")


async def main(config_path: str) -> None:
    cfg = json.loads(Path(config_path).read_text())
    node = build(cfg)
    producer = PrivateKey(bytes.fromhex(cfg["producer"]))
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        stdin = trio.lowlevel.FdStream(os.dup(0))
        buffer = b""
        while True:
            data = await stdin.receive_some(65536)
            if not data:
                break
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                msg = json.loads(line)
                nursery.start_soon(run_one, node, msg, producer)
        nursery.cancel_scope.cancel()


async def run_one(node: NodeRuntime, msg: dict[str, Any], producer: PrivateKey) -> None:
    try:
        result = await command(node, msg, producer)
        emit("reply", id=msg["id"], ok=True, **result)
    except Exception as err:  # the harness wants every failure as an answer
        emit(
            "reply",
            id=msg["id"],
            ok=False,
            error=f"{type(err).__name__}: {err}",
            trace=traceback.format_exc()[-2000:],
        )


if __name__ == "__main__":
    trio.run(main, sys.argv[1])
