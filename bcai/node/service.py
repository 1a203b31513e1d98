"""The node as operators run it: one trio program whose services (store and
network runtime, block producer, API server, metrics server, event feed)
run in one nursery.

- Opening checks the data dir (foreign or locked: a clear error before
  anything is written), the genesis file and the store's chain.
- A crash in any service cancels the others and surfaces as `ServiceFailed`
  naming the service; nothing is left half-alive.
- `shutdown()` (on SIGINT/SIGTERM) stops the producer, lets the write in
  progress finish (worker-thread writes are never abandoned), says goodbye
  to every peer, stops the API gracefully, then closes the store and
  releases the data dir.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from bcai import __version__
from bcai.chain import Block, Transaction
from bcai.errors import BcaiError
from bcai.net import HostConfig, NodeKeys, ScoreParams
from bcai.net._discovery import DiscoveryConfig
from bcai.net._relay import RelayLimits
from bcai.node import metrics as metrics_mod
from bcai.node.api import NodeApi
from bcai.node.asgi import App, Route
from bcai.node.config import NodeConfig, split_hostport
from bcai.node.datadir import DataDir
from bcai.node.events import EventBus
from bcai.node.genesis_file import load_genesis
from bcai.node.metrics import NodeMetrics
from bcai.node.producer import Producer
from bcai.node.runtime import NodeRuntime, RuntimeConfig
from bcai.node.views import PAYLOAD_KINDS
from bcai.store import ImportResult

log = logging.getLogger("bcai.node")
WATCH_INTERVAL_S = 0.025
GOODBYE_TIMEOUT_S = 2.0
JOB_BLOB_POLL_S = 2.0  # how often a mining node looks for pending jobs' missing matrices
LOOPBACK = ("127.0.0.1", "::1", "localhost")


class ServiceFailed(BcaiError):
    """A node service crashed; `service` names it, `__cause__` is the error."""

    def __init__(self, service: str, err: BaseException) -> None:
        while isinstance(err, BaseExceptionGroup) and len(err.exceptions) == 1:
            err = err.exceptions[0]  # nurseries nest the real error in groups
        super().__init__(
            "node-service-failed", f"the {service} service failed: {type(err).__name__}: {err}"
        )
        self.service = service
        self.cause = err


def runtime_config(config: NodeConfig, datadir: DataDir) -> RuntimeConfig:
    net = config.net
    host, port = split_hostport(net.listen, "net.listen")
    return RuntimeConfig(
        data_dir=datadir.path,
        genesis=load_genesis(config.genesis_path()),
        host=HostConfig(
            listen_host=host,
            listen_port=port,
            advertise=tuple(net.advertise),
            bootstrap=tuple(split_hostport(b, "net.bootstrap") for b in net.bootstrap),
            max_peers=net.max_peers,
            max_inbound=net.max_inbound,
            target_outbound=net.target_outbound,
            max_per_ip=net.max_per_ip,
            max_per_subnet24=net.max_per_subnet24,
            score=ScoreParams(ip_colocation_whitelist=frozenset(net.colocation_whitelist)),
        ),
        relay=RelayLimits(enabled=net.relay),
        sync_interval_s=net.sync_interval_s,
        nat_interval_s=net.nat_interval_s,
        port_mapping=net.port_mapping,
        discovery=DiscoveryConfig(allow_local=net.allow_local),
        # a node that mines on a GPU re-verifies seals on it too (docs/pouw.md)
        pouw_verify_backend=config.mining.backend if config.mining.enabled else "cpu",
    )


class Node:
    def __init__(self, config: NodeConfig) -> None:
        """Opens the data dir, keys and store (no network yet).

        Raises:
            DataDirError, GenesisFileError, StoreError, ConfigError: with a reason code.
        """
        self.config = config
        self.datadir = DataDir(config.data_dir)
        self.datadir.prepare()
        rt_config = runtime_config(config, self.datadir)  # reads genesis before locking
        self.datadir.lock()
        try:
            self.producer_key = self.datadir.key("producer")
            keys = NodeKeys.generate(identity=self.datadir.key("node"))
            self.runtime = NodeRuntime(keys, rt_config, on_event=self._runtime_event)
        except BaseException:
            self.datadir.unlock()
            raise
        self.runtime.mempool.max_bytes = config.mempool.max_bytes
        self.runtime.mempool.max_per_sender = config.mempool.max_per_sender
        self.events = EventBus(max_subscribers=config.api.max_ws_clients)
        self.metrics = NodeMetrics()
        self.runtime.chain.on_import = self._on_import
        self.api_token = self._token()
        self.api: NodeApi | None = None
        self.producer: Producer | None = None
        if config.mining.enabled:
            self.producer = Producer(
                self.runtime.store,
                self.runtime.chain,
                self.runtime.mempool,
                self.producer_key,
                backend=config.mining.backend,
                period_s=config.mining.period_s,
                batch=config.mining.batch,
                on_block=self._on_produced,
            )
        self.started_at = time.monotonic()
        self.info: dict[str, Any] = {}
        self._stopping = trio.Event()
        self.stopped = trio.Event()  # set once run() has cleaned up
        self._scope: trio.CancelScope | None = None
        self._producer_scope = trio.CancelScope()

    def _token(self) -> str:
        api = self.config.api
        if api.token:
            return api.token
        host, _ = split_hostport(api.listen, "api.listen")
        return "" if host in LOOPBACK else self.datadir.api_token()

    # ------------------------------------------------------------ running

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Runs every service until `shutdown()` or a crash; the store is
        closed and the data dir released on the way out, whatever happened.

        Raises:
            ServiceFailed: the first service that crashed (the rest were stopped).
        """
        try:
            with trio.CancelScope() as self._scope:
                async with trio.open_nursery() as nursery:
                    port = await nursery.start(self._service, "network", self._run_network)
                    api_url = metrics_url = None
                    if self.config.api.enabled:
                        self.api = NodeApi(self)
                        api_url = await nursery.start(
                            self._service,
                            "api",
                            self._serve_http,
                            self.api.app,
                            self.config.api.listen,
                        )
                    if self.config.metrics.enabled:
                        metrics_url = await nursery.start(
                            self._service,
                            "metrics",
                            self._serve_http,
                            self._metrics_app(),
                            self.config.metrics.listen,
                        )
                    nursery.start_soon(self._service, "events", self._watch)
                    nursery.start_soon(self._service, "gossip-txs", self._watch_gossip_txs)
                    if self.producer is not None:
                        nursery.start_soon(self._service, "producer", self._run_producer)
                        if self.producer.pouw is not None:
                            nursery.start_soon(self._service, "job-blobs", self._fetch_job_blobs)
                    self.info = self._describe(port, api_url, metrics_url)
                    self.datadir.write_info(self.info)
                    log.info("node started", extra={"info": self.info})
                    task_status.started(self.info)
        finally:
            self.runtime.store.close()
            self.datadir.unlock()
            self.stopped.set()
            log.info("node stopped; store closed")

    async def shutdown(self, reason: str = "shutdown") -> None:
        """Stops the node gracefully (idempotent)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        log.info("shutting down", extra={"reason": reason})
        self._producer_scope.cancel()  # a write in progress finishes first
        host = self.runtime.host
        with trio.move_on_after(GOODBYE_TIMEOUT_S):
            async with trio.open_nursery() as nursery:
                for pid in list(host.conns):
                    nursery.start_soon(host.disconnect, pid, reason)
        if self._scope is not None:
            self._scope.cancel()

    async def _service(
        self,
        name: str,
        fn: Callable[..., Awaitable[None]],
        *args: Any,
        task_status: Any = trio.TASK_STATUS_IGNORED,
    ) -> None:
        try:
            await fn(*args, task_status=task_status)
        except Exception as err:
            log.error("service %s failed", name, exc_info=True)
            raise ServiceFailed(name, err) from err

    async def _run_network(self, *, task_status: Any) -> None:
        await self.runtime.run(task_status=task_status, close_store=False)

    async def _run_producer(self, *, task_status: Any) -> None:
        task_status.started()
        assert self.producer is not None
        with self._producer_scope:
            await self.producer.run()

    async def _fetch_job_blobs(self, *, task_status: Any) -> None:
        """A mining node's fetcher of pending jobs' matrices (the producer
        seals only jobs whose A and B it holds), every JOB_BLOB_POLL_S."""
        task_status.started()
        assert self.producer is not None and self.producer.pouw is not None
        skipped = self.producer.pouw.skipped  # jobs the producer found unsealable
        while True:
            await self.runtime.fetch_job_blobs(
                max_size=self.config.mining.max_job_blob_bytes, skip=skipped
            )
            await trio.sleep(JOB_BLOB_POLL_S)

    async def _serve_http(self, app: App, listen: str, *, task_status: Any) -> None:
        cfg = HypercornConfig()
        host, port = split_hostport(listen, "listen")
        cfg.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
        cfg.accesslog = None
        cfg.errorlog = logging.getLogger("bcai.api.server")
        cfg.graceful_timeout = 1.0
        cfg.keep_alive_timeout = 30.0
        cfg.h11_max_incomplete_size = 16 * 1024
        cfg.websocket_max_message_size = 64 * 1024
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(
                lambda task_status: hypercorn_serve(
                    app,  # type: ignore[arg-type]  # a plain ASGI callable; its types are stricter
                    cfg,
                    shutdown_trigger=self._stopping.wait,
                    task_status=task_status,
                )
            )
            task_status.started(binds[0])

    def _metrics_app(self) -> App:
        async def scrape(_req: Any) -> str:
            return metrics_mod.render(self)

        route = Route("GET", "/metrics", scrape, "Prometheus metrics")
        route.content_type = metrics_mod.CONTENT_TYPE
        return App([route])

    def _describe(self, port: int, api_url: str | None, metrics_url: str | None) -> dict[str, Any]:
        rt = self.runtime
        return {
            "pid": os.getpid(),
            "version": __version__,
            "data_dir": str(self.datadir.path),
            "chain_id": rt.store.genesis.params.chain_id,
            "genesis": rt.store.genesis_id.hex(),
            "peer_id": rt.host.peer_id.hex(),
            "p2p_port": port,
            "api": api_url,
            "metrics": f"{metrics_url}/metrics" if metrics_url else None,
            "mining": self.producer is not None,
            "producer": self.producer_key.address.hex(),
        }

    # ------------------------------------------------------------ events

    def _runtime_event(self, name: str, **fields: Any) -> None:
        log.info(name, extra=fields)

    def _on_import(self, result: ImportResult, seconds: float) -> None:
        self.metrics.observe_import(result.status, seconds)

    def _on_produced(self, block: Block) -> None:
        log.info(
            "produced block",
            extra={
                "height": block.header.height,
                "hash": block.block_hash().hex(),
                "txs": len(block.txs),
            },
        )

    def announce_tx(self, tx: Transaction) -> None:
        body = tx.body
        self.events.publish(
            "txs",
            {
                "type": "tx",
                "id": tx.tx_id().hex(),
                "sender": tx.sender_address.hex(),
                "nonce": body.nonce,
                "kind": PAYLOAD_KINDS[type(body.payload)],
                "amount": body.payload.amount,
            },
        )

    async def _watch_gossip_txs(self, *, task_status: Any) -> None:
        task_status.started()
        async for delivered in self.runtime.chain.txs:
            self.announce_tx(Transaction.decode(delivered.data))

    async def _watch(self, *, task_status: Any) -> None:
        """Publishes new heads and peer changes to subscribers."""
        task_status.started()
        store, host = self.runtime.store, self.runtime.host
        last = store.head_hash
        peers = set(host.conns)
        while True:
            await trio.sleep(WATCH_INTERVAL_S)
            head_hash = store.head_hash
            if head_hash != last:
                last = head_hash
                head = store.get_header(head_hash)
                self.events.publish(
                    "heads",
                    {
                        "type": "head",
                        "height": head.height,
                        "hash": head_hash.hex(),
                        "parent": head.parent.hex(),
                        "timestamp_ms": head.timestamp_ms,
                    },
                )
            now = set(host.conns)
            for pid in now - peers:
                self.events.publish(
                    "peers", {"type": "peer", "event": "connected", "peer": pid.hex()}
                )
            for pid in peers - now:
                self.events.publish(
                    "peers", {"type": "peer", "event": "disconnected", "peer": pid.hex()}
                )
            peers = now


def service_failure(err: BaseException) -> ServiceFailed | None:
    """The ServiceFailed inside `err` (nurseries wrap errors in groups)."""
    if isinstance(err, ServiceFailed):
        return err
    if isinstance(err, BaseExceptionGroup):
        for inner in err.exceptions:
            found = service_failure(inner)
            if found is not None:
                return found
    return None


async def serve_until_signal(
    node: Node, on_started: Callable[[dict[str, Any]], None] = lambda info: None
) -> None:
    """Runs `node` until SIGINT or SIGTERM, then shuts it down gracefully.

    Raises:
        ServiceFailed: if a service crashed (possibly inside an exception group;
            see `service_failure`).
    """
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def watch_signals() -> None:
                async for signum in signals:
                    nursery.start_soon(node.shutdown, signal.Signals(signum).name.lower())

            async def run_node() -> None:
                try:
                    on_started(await nursery.start(node.run))
                    await node.stopped.wait()
                finally:
                    nursery.cancel_scope.cancel()

            nursery.start_soon(watch_signals)
            nursery.start_soon(run_node)
