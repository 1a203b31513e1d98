"""Prometheus metrics in the text exposition format (version 0.0.4), read
from the node's live state at each scrape, plus the one histogram the node
keeps itself (block import times). Names and meanings: docs/api.md."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bcai.node.service import Node

IMPORT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Histogram:
    buckets: tuple[float, ...] = IMPORT_BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(IMPORT_BUCKETS) + 1))
    total: float = 0.0
    n: int = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.n += 1

    def lines(self, name: str) -> Iterable[str]:
        running = 0
        for bound, count in zip(self.buckets, self.counts, strict=False):
            running += count
            yield f'{name}_bucket{{le="{bound}"}} {running}'
        yield f'{name}_bucket{{le="+Inf"}} {self.n}'
        yield f"{name}_sum {self.total}"
        yield f"{name}_count {self.n}"


@dataclass
class NodeMetrics:
    import_seconds: Histogram = field(default_factory=Histogram)
    imported: dict[str, int] = field(default_factory=dict)  # by import status

    def observe_import(self, status: str, seconds: float) -> None:
        self.import_seconds.observe(seconds)
        self.imported[status] = self.imported.get(status, 0) + 1


def _family(name: str, kind: str, help_text: str, samples: Iterable[str]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return "{" + inner + "}"


def render(node: Node) -> str:
    """The exposition text for one scrape."""
    rt = node.runtime
    host, store, pool = rt.host, rt.store, rt.mempool
    router = host.router.stats
    m = node.metrics
    stats = node.producer.stats if node.producer else None
    inbound = sum(1 for c in host.conns.values() if c.info.inbound)
    out: list[str] = []
    out += _family(
        "bcai_peers",
        "gauge",
        "connected peers",
        [
            f"bcai_peers{_labels(direction='inbound')} {inbound}",
            f"bcai_peers{_labels(direction='outbound')} {len(host.conns) - inbound}",
        ],
    )
    out += _family(
        "bcai_head_height",
        "gauge",
        "height of the head block",
        [f"bcai_head_height {store.head.height}"],
    )
    out += _family(
        "bcai_head_timestamp_seconds",
        "gauge",
        "timestamp of the head block",
        [f"bcai_head_timestamp_seconds {store.head.timestamp_ms / 1000}"],
    )
    out += _family(
        "bcai_block_import_seconds",
        "histogram",
        "time to validate and store a block",
        m.import_seconds.lines("bcai_block_import_seconds"),
    )
    out += _family(
        "bcai_blocks_imported_total",
        "counter",
        "blocks imported, by outcome",
        [
            f"bcai_blocks_imported_total{_labels(status=s)} {n}"
            for s, n in sorted(m.imported.items())
        ],
    )
    out += _family(
        "bcai_mempool_txs",
        "gauge",
        "transactions in the mempool",
        [f"bcai_mempool_txs {len(pool)}"],
    )
    out += _family(
        "bcai_mempool_bytes",
        "gauge",
        "bytes of transactions in the mempool",
        [f"bcai_mempool_bytes {pool.bytes}"],
    )
    gossip = {
        "duplicates": router.duplicates,
        "iwant_served": router.iwant_served,
        "broken_promises": router.broken_promises,
        "graylisted_rpcs": router.graylisted_rpcs,
        "dropped": router.dropped,
        "dropped_validation": host.metrics.dropped_validation,
        "dropped_delivery": host.metrics.dropped_delivery,
    }
    out += _family(
        "bcai_gossip_events_total",
        "counter",
        "gossip router events, by kind",
        [f"bcai_gossip_events_total{_labels(kind=k)} {v}" for k, v in gossip.items()],
    )
    out += _family(
        "bcai_gossip_published_total",
        "counter",
        "events published to API subscribers, by topic",
        [
            f"bcai_gossip_published_total{_labels(topic=t)} {n}"
            for t, n in sorted(node.events.published.items())
        ],
    )
    out += _family(
        "bcai_connections_total",
        "counter",
        "connections accepted or dialled",
        [
            f"bcai_connections_total{_labels(direction='inbound')} {host.metrics.connections_in}",
            f"bcai_connections_total{_labels(direction='outbound')} {host.metrics.connections_out}",
        ],
    )
    out += _family(
        "bcai_mining_hashrate",
        "gauge",
        "seal attempts per second over the last 30 s",
        [f"bcai_mining_hashrate {stats.hashrate() if stats else 0.0}"],
    )
    out += _family(
        "bcai_mining_hashes_total",
        "counter",
        "seal attempts",
        [f"bcai_mining_hashes_total {stats.hashes if stats else 0}"],
    )
    out += _family(
        "bcai_blocks_produced_total",
        "counter",
        "blocks this node sealed and imported",
        [f"bcai_blocks_produced_total {stats.blocks if stats else 0}"],
    )
    out += _family(
        "bcai_api_requests_total",
        "counter",
        "HTTP requests served by the API",
        [f"bcai_api_requests_total {node.api.app.requests if node.api else 0}"],
    )
    errors = node.api.app.errors if node.api else {}
    out += _family(
        "bcai_api_errors_total",
        "counter",
        "API error responses, by code",
        [f"bcai_api_errors_total{_labels(code=c)} {n}" for c, n in sorted(errors.items())],
    )
    return "\n".join(out) + "\n"
