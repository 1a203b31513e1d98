"""Many hosts in one trio process on 127.0.0.1, each stoppable and
restartable (churn). Gossip runs at 10x the spec's pace (0.1 s heartbeat,
0.3 s IWANT follow-up) so that tests take seconds; the logic is the same."""

from __future__ import annotations

import contextlib
import dataclasses
import random
from dataclasses import dataclass, field

import trio

from bcai.net import NetError, NodeKeys
from bcai.net._gossip import Validation
from bcai.net._gossip_params import GossipParams, ScoreParams
from bcai.net._host import Delivered, Host, HostConfig, Validator

GENESIS = b"\x07" * 32
FAST = GossipParams(heartbeat_s=0.1, iwant_followup_s=0.3)
LOOPBACK_SCORE = ScoreParams(ip_colocation_whitelist=frozenset({"127.0.0.1"}))
CONFIG = HostConfig(
    listen_host="127.0.0.1",
    max_per_ip=1000,
    max_per_subnet24=1000,
    target_outbound=3,
    gossip=FAST,
    score=LOOPBACK_SCORE,
)


async def reject_bad(_topic: str, data: bytes, _source: bytes) -> Validation:
    return Validation.REJECT if data.startswith(b"bad") else Validation.ACCEPT


@dataclass
class Node:
    keys: NodeKeys
    config: HostConfig
    host: Host | None = None
    scope: trio.CancelScope | None = None
    port: int = 0
    received: dict[str, dict[bytes, float]] = field(default_factory=dict)  # topic -> id -> t


class Cluster:
    def __init__(self, nursery: trio.Nursery, *, seed: int = 1) -> None:
        self.nursery = nursery
        self.nodes: list[Node] = []
        self.rng = random.Random(seed)

    async def add(
        self,
        topics: tuple[str, ...] = ("blocks",),
        validator: Validator | None = reject_bad,
        config: HostConfig = CONFIG,
    ) -> Node:
        node = Node(NodeKeys.generate(), dataclasses.replace(config, seed=len(self.nodes)))
        self.nodes.append(node)
        await self.start(node, topics, validator)
        return node

    async def start(self, node: Node, topics: tuple[str, ...], validator: Validator | None) -> None:
        node.host = Host(node.keys, GENESIS, node.config)
        node.scope = trio.CancelScope()

        async def run(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            assert node.scope is not None and node.host is not None
            with node.scope:
                async with trio.open_nursery() as inner:
                    node.port = await inner.start(node.host.run)
                    for topic in topics:
                        channel = node.host.subscribe(topic, validator)
                        inner.start_soon(self._collect, node, topic, channel)
                    task_status.started()

        await self.nursery.start(run)

    @staticmethod
    async def _collect(
        node: Node, topic: str, channel: trio.MemoryReceiveChannel[Delivered]
    ) -> None:
        seen = node.received.setdefault(topic, {})
        async for d in channel:
            seen[d.message_id] = trio.current_time()

    def stop(self, node: Node) -> None:
        assert node.scope is not None
        node.scope.cancel()

    async def connect_random(self, degree: int = 3) -> None:
        """Each node dials `degree` random others: a sparse random graph
        (connected with high probability; a ring is added to make sure)."""
        n = len(self.nodes)
        for i, node in enumerate(self.nodes):
            assert node.host is not None
            targets = {(i + 1) % n} | set(self.rng.sample(range(n), degree))
            for j in sorted(targets - {i}):
                # the other side may have dialed us first: conn-duplicate
                with contextlib.suppress(NetError):
                    await node.host.dial("127.0.0.1", self.nodes[j].port)

    async def wait_for(self, predicate: object, timeout_s: float = 10.0) -> None:
        with trio.fail_after(timeout_s):
            while not predicate():  # type: ignore[operator]
                await trio.sleep(0.02)
