"""Gossipsub v1.1 peer scoring (spec section "Peer Scoring"): per-topic terms
P1 (time in mesh), P2 (first deliveries), P3/P3b (mesh delivery deficit and
its penalty at prune), P4 (invalid messages), and per-peer P5 (application),
P6 (IP colocation) and P7 (behaviour penalty). Counters decay once per decay
interval; a disconnected peer's counters are kept for `retain_score_s` so
that reconnecting does not wash a bad score.

Deterministic: every call takes `now` (seconds); nothing reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bcai.net._gossip_params import ScoreParams, TopicScoreParams


@dataclass
class TopicStats:
    in_mesh: bool = False
    graft_time: float = 0.0
    mesh_time: float = 0.0
    first_message_deliveries: float = 0.0
    mesh_message_deliveries: float = 0.0
    mesh_message_deliveries_active: bool = False
    mesh_failure_penalty: float = 0.0
    invalid_message_deliveries: float = 0.0


@dataclass
class PeerStats:
    ip: str
    connected: bool = True
    expire: float = 0.0
    topics: dict[str, TopicStats] = field(default_factory=dict)
    behaviour_penalty: float = 0.0
    app_score: float = 0.0


class PeerScore:
    def __init__(self, params: ScoreParams) -> None:
        self.params = params
        self.peers: dict[bytes, PeerStats] = {}
        self._ip_peers: dict[str, set[bytes]] = {}

    # ------------------------------------------------------------ membership

    def add_peer(self, peer: bytes, ip: str) -> None:
        stats = self.peers.get(peer)
        if stats is None:
            stats = self.peers[peer] = PeerStats(ip=ip)
        stats.connected = True
        stats.ip = ip
        self._ip_peers.setdefault(ip, set()).add(peer)

    def remove_peer(self, peer: bytes, now: float) -> None:
        stats = self.peers.get(peer)
        if stats is None:
            return
        self._ip_peers.get(stats.ip, set()).discard(peer)
        if self.score(peer, now) > 0:  # nothing worth remembering
            del self.peers[peer]
            return
        for topic, ts in stats.topics.items():  # leaving the mesh counts as a prune
            if ts.in_mesh:
                self.prune(peer, topic, now)
        stats.connected = False
        stats.expire = now + self.params.retain_score_s

    def _topic(self, peer: bytes, topic: str) -> TopicStats | None:
        stats = self.peers.get(peer)
        if stats is None or topic not in self.params.topics:
            return None
        ts = stats.topics.get(topic)
        if ts is None:
            ts = stats.topics[topic] = TopicStats()
        return ts

    def graft(self, peer: bytes, topic: str, now: float) -> None:
        ts = self._topic(peer, topic)
        if ts is not None:
            ts.in_mesh, ts.graft_time, ts.mesh_time = True, now, 0.0
            ts.mesh_message_deliveries_active = False

    def prune(self, peer: bytes, topic: str, now: float) -> None:
        ts = self._topic(peer, topic)
        if ts is None:
            return
        tp = self.params.topics[topic]
        deficit = self._deficit(ts, tp)
        if ts.mesh_message_deliveries_active and deficit > 0:
            ts.mesh_failure_penalty += deficit * deficit
        ts.in_mesh = False

    # ------------------------------------------------------------ events

    def first_delivery(self, peer: bytes, topic: str) -> None:
        ts = self._topic(peer, topic)
        if ts is None:
            return
        tp = self.params.topics[topic]
        ts.first_message_deliveries = min(
            tp.first_message_deliveries_cap, ts.first_message_deliveries + 1
        )
        self.mesh_delivery(peer, topic)

    def mesh_delivery(self, peer: bytes, topic: str) -> None:
        """A first or near-first delivery of a valid message by `peer`."""
        ts = self._topic(peer, topic)
        if ts is None or not ts.in_mesh:
            return
        tp = self.params.topics[topic]
        ts.mesh_message_deliveries = min(
            tp.mesh_message_deliveries_cap, ts.mesh_message_deliveries + 1
        )

    def invalid_delivery(self, peer: bytes, topic: str) -> None:
        ts = self._topic(peer, topic)
        if ts is not None:
            ts.invalid_message_deliveries += 1

    def behaviour_penalty(self, peer: bytes, count: float = 1.0) -> None:
        stats = self.peers.get(peer)
        if stats is not None:
            stats.behaviour_penalty += count

    def set_app_score(self, peer: bytes, value: float) -> None:
        stats = self.peers.get(peer)
        if stats is not None:
            stats.app_score = value

    # ------------------------------------------------------------ score

    @staticmethod
    def _deficit(ts: TopicStats, tp: TopicScoreParams) -> float:
        if ts.mesh_message_deliveries < tp.mesh_message_deliveries_threshold:
            return tp.mesh_message_deliveries_threshold - ts.mesh_message_deliveries
        return 0.0

    def score(self, peer: bytes, now: float) -> float:
        stats = self.peers.get(peer)
        if stats is None:
            return 0.0
        p = self.params
        total = 0.0
        for topic, ts in stats.topics.items():
            tp = p.topics[topic]
            s = 0.0
            if ts.in_mesh:
                mesh_time = now - ts.graft_time
                p1 = min(mesh_time / tp.time_in_mesh_quantum_s, tp.time_in_mesh_cap)
                s += p1 * tp.time_in_mesh_weight
                if ts.mesh_message_deliveries_active or (
                    mesh_time > tp.mesh_message_deliveries_activation_s
                ):
                    deficit = self._deficit(ts, tp)
                    s += deficit * deficit * tp.mesh_message_deliveries_weight
            s += ts.first_message_deliveries * tp.first_message_deliveries_weight
            s += ts.mesh_failure_penalty * tp.mesh_failure_penalty_weight
            s += ts.invalid_message_deliveries**2 * tp.invalid_message_deliveries_weight
            total += s * tp.topic_weight
        total = min(total, p.topic_score_cap) if total > 0 else total
        total += stats.app_score * p.app_specific_weight
        if stats.ip not in p.ip_colocation_whitelist:
            n = len(self._ip_peers.get(stats.ip, ()))
            if n > p.ip_colocation_factor_threshold:
                surplus = n - p.ip_colocation_factor_threshold
                total += surplus * surplus * p.ip_colocation_factor_weight
        excess = stats.behaviour_penalty - p.behaviour_penalty_threshold
        if excess > 0:
            total += excess * excess * p.behaviour_penalty_weight
        return total

    # ------------------------------------------------------------ decay

    def decay(self, now: float) -> None:
        """Once per decay interval: multiply the counters by their decay
        factors, zero the tiny ones, and forget expired disconnected peers."""
        p = self.params
        zero = p.decay_to_zero

        def dec(value: float, factor: float) -> float:
            value *= factor
            return 0.0 if value < zero else value

        for peer, stats in list(self.peers.items()):
            if not stats.connected and stats.expire <= now:
                del self.peers[peer]
                continue
            for topic, ts in stats.topics.items():
                tp = p.topics[topic]
                ts.first_message_deliveries = dec(
                    ts.first_message_deliveries, tp.first_message_deliveries_decay
                )
                ts.mesh_message_deliveries = dec(
                    ts.mesh_message_deliveries, tp.mesh_message_deliveries_decay
                )
                ts.mesh_failure_penalty = dec(
                    ts.mesh_failure_penalty, tp.mesh_failure_penalty_decay
                )
                ts.invalid_message_deliveries = dec(
                    ts.invalid_message_deliveries, tp.invalid_message_deliveries_decay
                )
                if ts.in_mesh:
                    ts.mesh_time = now - ts.graft_time
                    if ts.mesh_time > tp.mesh_message_deliveries_activation_s:
                        ts.mesh_message_deliveries_active = True
            stats.behaviour_penalty = dec(stats.behaviour_penalty, p.behaviour_penalty_decay)
