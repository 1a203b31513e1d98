"""Every gossip parameter, in one place (docs/protocol.md, "Gossip", lists
them with the reasoning).

The mesh and timing values are the gossipsub v1.1 spec's defaults (libp2p/specs
pubsub/gossipsub/gossipsub-v1.1.md), not py-libp2p's. The spec gives no
defaults for scoring; ours are chosen so that:

- an honest peer's score stays >= 0: the positive terms (time in mesh, first
  deliveries) are small and capped, and the penalties need misbehaviour;
- one invalid block (P4, weight -10 x topic weight 1) pushes a peer below the
  gossip threshold (-10): it gets no gossip and its IHAVEs are ignored; three
  (-90) push it below the graylist threshold (-80): everything it sends is
  ignored and the connection manager disconnects and bans it;
- broken IWANT promises and repeated duplicates (P7, weight -1, squared
  above a threshold of 2) take a peer to the gossip threshold after ~6 and
  to the graylist after ~11 offences within the decay half-life (~70 s);
- more than 3 peers on one IP (P6) cost (n - 3)^2 each, so a Sybil on one
  address cannot outvote the rest (whitelisted IPs, e.g. a devnet's loopback,
  are exempt).

P3 (mesh delivery rate) is implemented but off for both topics: block and
transaction rates vary too much on a young chain for a delivery floor not to
punish honest peers in quiet minutes (Ethereum turned it off for the same
reason). A topic that has a steady rate can switch it on.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GossipParams:
    d: int = 6  # mesh degree target
    d_lo: int = 4  # graft when below
    d_hi: int = 12  # prune when above
    d_lazy: int = 6  # at least this many peers get IHAVE gossip
    d_score: int = 4  # peers kept by score when pruning an oversubscribed mesh
    d_out: int = 2  # outbound peers kept in each mesh
    heartbeat_s: float = 1.0
    fanout_ttl_s: float = 60.0
    mcache_len: int = 5  # heartbeats of messages kept for IWANT
    mcache_gossip: int = 3  # heartbeats of message ids advertised in IHAVE
    seen_ttl_s: float = 120.0
    prune_backoff_s: float = 60.0
    unsubscribe_backoff_s: float = 10.0
    gossip_factor: float = 0.25
    gossip_retransmission: int = 3  # times one message is sent to one peer via IWANT
    max_ihave_length: int = 5000  # ids asked for from one peer per heartbeat
    max_ihave_messages: int = 10  # IHAVE messages handled from one peer per heartbeat
    iwant_followup_s: float = 3.0  # a promised message must arrive within this
    opportunistic_graft_ticks: int = 60
    opportunistic_graft_peers: int = 2
    flood_publish: bool = True
    # wire limits (per RPC)
    max_messages_per_rpc: int = 256
    max_queued_messages: int = 8192  # per peer, waiting to be sent
    max_topics: int = 64
    max_topic_length: int = 64


@dataclass(frozen=True)
class TopicScoreParams:
    topic_weight: float = 1.0
    # P1 time in mesh
    time_in_mesh_weight: float = 0.01
    time_in_mesh_quantum_s: float = 1.0
    time_in_mesh_cap: float = 300.0
    # P2 first message deliveries
    first_message_deliveries_weight: float = 1.0
    first_message_deliveries_decay: float = 0.99
    first_message_deliveries_cap: float = 10.0
    # P3 mesh message delivery rate (off: weight 0)
    mesh_message_deliveries_weight: float = 0.0
    mesh_message_deliveries_decay: float = 0.97
    mesh_message_deliveries_threshold: float = 1.0
    mesh_message_deliveries_cap: float = 10.0
    mesh_message_deliveries_activation_s: float = 30.0
    mesh_message_delivery_window_s: float = 0.01
    # P3b mesh failure penalty
    mesh_failure_penalty_weight: float = 0.0
    mesh_failure_penalty_decay: float = 0.97
    # P4 invalid messages
    invalid_message_deliveries_weight: float = -10.0
    invalid_message_deliveries_decay: float = 0.99


def _default_topics() -> dict[str, TopicScoreParams]:
    return {"blocks": TopicScoreParams(topic_weight=1.0), "txs": TopicScoreParams(topic_weight=0.5)}


@dataclass(frozen=True)
class ScoreParams:
    topics: dict[str, TopicScoreParams] = field(default_factory=_default_topics)
    topic_score_cap: float = 20.0  # cap on the positive sum of the topic terms
    app_specific_weight: float = 1.0  # P5
    ip_colocation_factor_weight: float = -1.0  # P6
    ip_colocation_factor_threshold: int = 3
    ip_colocation_whitelist: frozenset[str] = frozenset()
    behaviour_penalty_weight: float = -1.0  # P7
    behaviour_penalty_threshold: float = 2.0
    behaviour_penalty_decay: float = 0.99
    decay_interval_s: float = 1.0
    decay_to_zero: float = 0.01
    retain_score_s: float = 3600.0
    # thresholds: gossip > publish > graylist
    gossip_threshold: float = -10.0
    publish_threshold: float = -50.0
    graylist_threshold: float = -80.0
    accept_px_threshold: float = 10.0
    opportunistic_graft_threshold: float = 1.0

    def __post_init__(self) -> None:
        if not (0 > self.gossip_threshold > self.publish_threshold > self.graylist_threshold):
            raise ValueError("need 0 > gossip_threshold > publish_threshold > graylist_threshold")


DEFAULT_GOSSIP = GossipParams()
DEFAULT_SCORE = ScoreParams()
