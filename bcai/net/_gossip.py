"""The gossip router: gossipsub v1.1 as a deterministic state machine.

It never touches a socket or a clock. The host feeds it events — a peer came
or went, an RPC arrived, a validation finished, a heartbeat tick — each with
`now` in seconds, and collects what to send with `take_outgoing()`. Messages
that need validation come back from `handle_rpc`; the host runs the topic's
validator and reports with `validated`, and only then is a message
delivered to the application and forwarded (docs/protocol.md, "Gossip").
"""

from __future__ import annotations

import enum
import random
import statistics
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from bcai.net._gossip_params import DEFAULT_GOSSIP, DEFAULT_SCORE, GossipParams, ScoreParams
from bcai.net._gossip_wire import RPC, IHave, Message, Prune, Subscription
from bcai.net._score import PeerScore


class Validation(enum.Enum):
    ACCEPT = "accept"
    IGNORE = "ignore"
    REJECT = "reject"


@dataclass
class _Pending:
    subscriptions: list[Subscription] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    ihave: dict[str, list[bytes]] = field(default_factory=dict)
    iwant: list[bytes] = field(default_factory=list)
    graft: list[str] = field(default_factory=list)
    prune: list[Prune] = field(default_factory=list)


@dataclass
class _Seen:
    expire: float
    first_at: float
    senders: set[bytes] = field(default_factory=set)
    validating: bool = True
    topic: str = ""
    repeated: set[bytes] = field(default_factory=set)


@dataclass
class GossipPeer:
    peer_id: bytes
    ip: str
    outbound: bool
    topics: set[str] = field(default_factory=set)


@dataclass
class Received:
    """A new message for the host to validate."""

    message_id: bytes
    message: Message
    source: bytes


@dataclass
class RouterStats:
    duplicates: int = 0
    repeats: int = 0
    graylisted_rpcs: int = 0
    broken_promises: int = 0
    iwant_served: int = 0
    ihave_ignored: int = 0
    dropped: int = 0


class GossipRouter:
    def __init__(
        self,
        params: GossipParams = DEFAULT_GOSSIP,
        score_params: ScoreParams = DEFAULT_SCORE,
        *,
        seed: int | None = None,
    ) -> None:
        self.params = params
        self.score = PeerScore(score_params)
        self.rng = random.Random(seed)
        self.peers: dict[bytes, GossipPeer] = {}
        self.topics: set[str] = set()  # our subscriptions
        self.mesh: dict[str, set[bytes]] = {}
        self.fanout: dict[str, set[bytes]] = {}
        self.fanout_last_publish: dict[str, float] = {}
        self.backoff: dict[tuple[str, bytes], float] = {}
        self.seen: OrderedDict[bytes, _Seen] = OrderedDict()
        self.mcache: dict[bytes, Message] = {}
        self.mcache_windows: deque[list[bytes]] = deque([[]])
        self.transmissions: dict[bytes, dict[bytes, int]] = {}  # id -> peer -> IWANT serves
        self.promises: dict[bytes, dict[bytes, float]] = {}  # peer -> id -> deadline
        self.peer_have: dict[bytes, int] = {}
        self.iasked: dict[bytes, int] = {}
        self.heartbeats = 0
        self.stats = RouterStats()
        self._out: dict[bytes, _Pending] = {}
        self._last_decay = 0.0

    # ------------------------------------------------------------ helpers

    def _pending(self, peer: bytes) -> _Pending:
        p = self._out.get(peer)
        if p is None:
            p = self._out[peer] = _Pending()
        return p

    def peer_score(self, peer: bytes, now: float) -> float:
        return self.score.score(peer, now)

    def _topic_peers(self, topic: str) -> list[bytes]:
        return [pid for pid, p in self.peers.items() if topic in p.topics]

    def _in_backoff(self, topic: str, peer: bytes, now: float) -> bool:
        until = self.backoff.get((topic, peer))
        return until is not None and until > now

    def _add_backoff(self, topic: str, peer: bytes, now: float, seconds: float) -> None:
        key = (topic, peer)
        self.backoff[key] = max(self.backoff.get(key, 0.0), now + seconds)

    def _queue(self, peer: bytes, msg: Message) -> None:
        pending = self._pending(peer)
        if len(pending.messages) >= self.params.max_queued_messages:
            self.stats.dropped += 1  # a peer that cannot keep up loses gossip
        else:
            pending.messages.append(msg)

    def _send_graft(self, peer: bytes, topic: str, now: float) -> None:
        self.mesh.setdefault(topic, set()).add(peer)
        self.score.graft(peer, topic, now)
        self._pending(peer).graft.append(topic)

    def _send_prune(self, peer: bytes, topic: str, now: float, backoff_s: float) -> None:
        self.mesh.get(topic, set()).discard(peer)
        self.score.prune(peer, topic, now)
        self._add_backoff(topic, peer, now, backoff_s)
        self._pending(peer).prune.append(Prune(topic=topic, backoff_s=int(backoff_s)))

    # ------------------------------------------------------------ peers

    def add_peer(self, peer: bytes, ip: str, outbound: bool, now: float) -> None:
        self.peers[peer] = GossipPeer(peer, ip, outbound)
        self.score.add_peer(peer, ip)
        if self.topics:
            self._pending(peer).subscriptions.extend(
                Subscription(topic=t, subscribe=True) for t in sorted(self.topics)
            )

    def remove_peer(self, peer: bytes, now: float) -> None:
        gp = self.peers.pop(peer, None)
        if gp is None:
            return
        for topic_peers in (*self.mesh.values(), *self.fanout.values()):
            topic_peers.discard(peer)
        self.score.remove_peer(peer, now)
        self.promises.pop(peer, None)
        self._out.pop(peer, None)

    # ------------------------------------------------------------ local API

    def subscribe(self, topic: str, now: float) -> None:
        if topic in self.topics:
            return
        self.topics.add(topic)
        for peer in self.peers:
            self._pending(peer).subscriptions.append(Subscription(topic=topic, subscribe=True))
        mesh = self.mesh.setdefault(topic, set())
        for peer in self.fanout.pop(topic, set()):
            if self.peer_score(peer, now) >= 0 and len(mesh) < self.params.d:
                mesh.add(peer)
        self.fanout_last_publish.pop(topic, None)
        candidates = [
            p
            for p in self._topic_peers(topic)
            if p not in mesh
            and not self._in_backoff(topic, p, now)
            and self.peer_score(p, now) >= 0
        ]
        self.rng.shuffle(candidates)
        for peer in candidates[: max(0, self.params.d - len(mesh))]:
            mesh.add(peer)
        for peer in mesh:
            self.score.graft(peer, topic, now)
            self._pending(peer).graft.append(topic)

    def unsubscribe(self, topic: str, now: float) -> None:
        if topic not in self.topics:
            return
        self.topics.discard(topic)
        for peer in self.peers:
            self._pending(peer).subscriptions.append(Subscription(topic=topic, subscribe=False))
        for peer in list(self.mesh.get(topic, ())):
            self._send_prune(peer, topic, now, self.params.unsubscribe_backoff_s)
        self.mesh.pop(topic, None)

    def publish(self, topic: str, data: bytes, now: float) -> bytes:
        """Sends our own (already validated) message; returns its id."""
        msg = Message(topic=topic, data=data)
        mid = msg.message_id()
        if mid in self.seen:
            return mid
        self.seen[mid] = _Seen(now + self.params.seen_ttl_s, now, validating=False, topic=topic)
        self._cache(mid, msg)
        sp = self.score.params
        if self.params.flood_publish:
            peers = self._topic_peers(topic)
            targets = {p for p in peers if self.peer_score(p, now) >= sp.publish_threshold}
        elif topic in self.topics:
            targets = set(self.mesh.get(topic, ()))
        else:
            fan = self.fanout.get(topic)
            if not fan:
                cands = [
                    p
                    for p in self._topic_peers(topic)
                    if self.peer_score(p, now) >= sp.publish_threshold
                ]
                self.rng.shuffle(cands)
                fan = self.fanout[topic] = set(cands[: self.params.d])
            targets = set(fan)
        if topic not in self.topics:
            self.fanout_last_publish[topic] = now
        for peer in targets:
            self._queue(peer, msg)
        return mid

    def _cache(self, mid: bytes, msg: Message) -> None:
        self.mcache[mid] = msg
        self.mcache_windows[0].append(mid)

    # ------------------------------------------------------------ inbound

    def handle_rpc(self, peer: bytes, rpc: RPC, now: float) -> list[Received]:
        """Processes one RPC from `peer`; returns the new messages that need
        validation before anything else happens to them."""
        if peer not in self.peers:
            return []
        sp = self.score.params
        if self.peer_score(peer, now) < sp.graylist_threshold:
            self.stats.graylisted_rpcs += 1
            return []
        gp = self.peers[peer]
        for sub in rpc.subscriptions:
            if sub.subscribe:
                if len(gp.topics) < self.params.max_topics:
                    gp.topics.add(sub.topic)
            else:
                gp.topics.discard(sub.topic)
                self.mesh.get(sub.topic, set()).discard(peer)
                self.fanout.get(sub.topic, set()).discard(peer)
        received = [r for m in rpc.messages if (r := self._on_message(peer, m, now)) is not None]
        for ihave in rpc.ihave:
            self._on_ihave(peer, ihave, now)
        if rpc.iwant:
            self._on_iwant(peer, rpc.iwant, now)
        for topic in rpc.graft:
            self._on_graft(peer, topic, now)
        for prune in rpc.prune:
            self._on_prune(peer, prune, now)
        return received

    def _on_message(self, peer: bytes, msg: Message, now: float) -> Received | None:
        if msg.topic not in self.topics:
            return None
        mid = msg.message_id()
        promised = self.promises.get(peer)
        if promised:
            promised.pop(mid, None)
        seen = self.seen.get(mid)
        if seen is not None:
            self.stats.duplicates += 1
            if peer in seen.senders:
                # An honest peer sends a message once, or at most once more
                # when our IWANT crossed its forward; past that it floods.
                self.stats.repeats += 1
                if peer in seen.repeated:
                    self.score.behaviour_penalty(peer)
                seen.repeated.add(peer)
                return None
            seen.senders.add(peer)
            if not seen.validating and seen.topic in self.score.params.topics:
                window = self.score.params.topics[seen.topic].mesh_message_delivery_window_s
                if now - seen.first_at <= window:
                    self.score.mesh_delivery(peer, msg.topic)
            return None
        self.seen[mid] = _Seen(now + self.params.seen_ttl_s, now, {peer}, topic=msg.topic)
        return Received(mid, msg, peer)

    def validated(self, received: Received, result: Validation, now: float) -> bool:
        """Applies the verdict on a received message; returns True if it is
        to be delivered to the application (it has been forwarded)."""
        mid, msg, source = received.message_id, received.message, received.source
        seen = self.seen.get(mid)
        senders = seen.senders if seen is not None else {source}
        if seen is not None:
            seen.validating = False
        if result == Validation.REJECT:
            for p in senders:
                self.score.invalid_delivery(p, msg.topic)
            return False
        if result == Validation.IGNORE:
            return False
        self.score.first_delivery(source, msg.topic)
        for p in senders - {source}:
            self.score.mesh_delivery(p, msg.topic)
        self._cache(mid, msg)
        for p in self.mesh.get(msg.topic, ()):
            if p not in senders:
                self._queue(p, msg)
        return True

    def _on_ihave(self, peer: bytes, ihave: IHave, now: float) -> None:
        sp = self.score.params
        if self.peer_score(peer, now) < sp.gossip_threshold or ihave.topic not in self.topics:
            self.stats.ihave_ignored += 1
            return
        self.peer_have[peer] = self.peer_have.get(peer, 0) + 1
        if self.peer_have[peer] > self.params.max_ihave_messages:
            self.stats.ihave_ignored += 1
            return
        asked = self.iasked.get(peer, 0)
        if asked >= self.params.max_ihave_length:
            return
        want = [mid for mid in dict.fromkeys(ihave.ids) if mid not in self.seen]
        if not want:
            return
        self.rng.shuffle(want)
        want = want[: self.params.max_ihave_length - asked]
        self.iasked[peer] = asked + len(want)
        self._pending(peer).iwant.extend(want)
        # one promise per IWANT, for a random id of it (as go-libp2p does)
        self.promises.setdefault(peer, {})[self.rng.choice(want)] = (
            now + self.params.iwant_followup_s
        )

    def _on_iwant(self, peer: bytes, ids: tuple[bytes, ...], now: float) -> None:
        if self.peer_score(peer, now) < self.score.params.gossip_threshold:
            return
        for mid in dict.fromkeys(ids):
            msg = self.mcache.get(mid)
            if msg is None:
                continue
            sent = self.transmissions.setdefault(mid, {})
            count = sent.get(peer, 0)
            if count >= self.params.gossip_retransmission:
                continue
            sent[peer] = count + 1
            self.stats.iwant_served += 1
            self._queue(peer, msg)

    def _on_graft(self, peer: bytes, topic: str, now: float) -> None:
        if topic not in self.topics:
            self._pending(peer).prune.append(Prune(topic=topic, backoff_s=0))
            return
        mesh = self.mesh.setdefault(topic, set())
        if peer in mesh:
            return
        if self._in_backoff(topic, peer, now):
            self.score.behaviour_penalty(peer)  # grafting during backoff
            self._send_prune(peer, topic, now, self.params.prune_backoff_s)
            return
        gp = self.peers[peer]
        if self.peer_score(peer, now) < 0 or (len(mesh) >= self.params.d_hi and not gp.outbound):
            self._send_prune(peer, topic, now, self.params.prune_backoff_s)
            return
        mesh.add(peer)
        self.score.graft(peer, topic, now)

    def _on_prune(self, peer: bytes, prune: Prune, now: float) -> None:
        mesh = self.mesh.get(prune.topic)
        if mesh is not None and peer in mesh:
            mesh.discard(peer)
            self.score.prune(peer, prune.topic, now)
        backoff = min(max(float(prune.backoff_s), self.params.prune_backoff_s), 3600.0)
        self._add_backoff(prune.topic, peer, now, backoff)

    # ------------------------------------------------------------ heartbeat

    def heartbeat(self, now: float) -> None:
        self.heartbeats += 1
        sp = self.score.params
        if now - self._last_decay >= sp.decay_interval_s:
            self._last_decay = now
            self.score.decay(now)
        self._apply_broken_promises(now)
        self.peer_have.clear()
        self.iasked.clear()
        for topic in sorted(self.topics):
            self._maintain_mesh(topic, now)
        self._maintain_fanout(now)
        self._emit_gossip(now)
        self._shift_cache(now)

    def _apply_broken_promises(self, now: float) -> None:
        for peer, promised in self.promises.items():
            broken = [mid for mid, deadline in promised.items() if deadline <= now]
            for mid in broken:
                del promised[mid]
            if broken:
                self.stats.broken_promises += len(broken)
                self.score.behaviour_penalty(peer, float(len(broken)))

    def _maintain_mesh(self, topic: str, now: float) -> None:
        p = self.params
        mesh = self.mesh.setdefault(topic, set())
        scores = {peer: self.peer_score(peer, now) for peer in self._topic_peers(topic)}
        for peer in [x for x in mesh if scores.get(x, 0.0) < 0]:
            self._send_prune(peer, topic, now, p.prune_backoff_s)

        def candidates() -> list[bytes]:
            out = [
                x
                for x in scores
                if x not in mesh and scores[x] >= 0 and not self._in_backoff(topic, x, now)
            ]
            self.rng.shuffle(out)
            return out

        if len(mesh) < p.d_lo:
            for peer in candidates()[: p.d - len(mesh)]:
                self._send_graft(peer, topic, now)
        if len(mesh) > p.d_hi:
            ranked = sorted(mesh, key=lambda x: -scores.get(x, 0.0))
            keep = ranked[: p.d_score]
            rest = ranked[p.d_score :]
            self.rng.shuffle(rest)
            keep += rest[: p.d - p.d_score]
            kept_out = sum(self.peers[x].outbound for x in keep)
            if kept_out < p.d_out:  # swap in outbound peers for inbound ones
                spare = [x for x in rest[p.d - p.d_score :] if self.peers[x].outbound]
                for swap in spare[: p.d_out - kept_out]:
                    inbound = [x for x in keep[p.d_score :] if not self.peers[x].outbound]
                    if inbound:
                        keep.remove(inbound[-1])
                    keep.append(swap)
            for peer in set(mesh) - set(keep):
                self._send_prune(peer, topic, now, p.prune_backoff_s)
        if len(mesh) >= p.d_lo:
            outbound = sum(self.peers[x].outbound for x in mesh)
            if outbound < p.d_out:
                more = [x for x in candidates() if self.peers[x].outbound]
                for peer in more[: p.d_out - outbound]:
                    self._send_graft(peer, topic, now)
        if self.heartbeats % p.opportunistic_graft_ticks == 0 and len(mesh) > 1:
            median = statistics.median(scores.get(x, 0.0) for x in mesh)
            if median < self.score.params.opportunistic_graft_threshold:
                better = [x for x in candidates() if scores[x] > median]
                for peer in better[: p.opportunistic_graft_peers]:
                    self._send_graft(peer, topic, now)

    def _maintain_fanout(self, now: float) -> None:
        sp = self.score.params
        for topic in list(self.fanout):
            if now - self.fanout_last_publish.get(topic, now) > self.params.fanout_ttl_s:
                del self.fanout[topic]
                self.fanout_last_publish.pop(topic, None)
                continue
            fan = self.fanout[topic]
            for peer in [x for x in fan if self.peer_score(x, now) < sp.publish_threshold]:
                fan.discard(peer)
            if len(fan) < self.params.d:
                cands = [
                    x
                    for x in self._topic_peers(topic)
                    if x not in fan and self.peer_score(x, now) >= sp.publish_threshold
                ]
                self.rng.shuffle(cands)
                fan.update(cands[: self.params.d - len(fan)])

    def _emit_gossip(self, now: float) -> None:
        windows = list(self.mcache_windows)[: self.params.mcache_gossip]
        ids_by_topic: dict[str, list[bytes]] = {}
        for window in windows:
            for mid in window:
                msg = self.mcache.get(mid)
                if msg is not None:
                    ids_by_topic.setdefault(msg.topic, []).append(mid)
        threshold = self.score.params.gossip_threshold
        for topic, ids in ids_by_topic.items():
            exclude = self.mesh.get(topic, set()) | self.fanout.get(topic, set())
            cands = [
                x
                for x in self._topic_peers(topic)
                if x not in exclude and self.peer_score(x, now) >= threshold
            ]
            n = max(self.params.d_lazy, int(len(cands) * self.params.gossip_factor))
            self.rng.shuffle(cands)
            recent = ids[-self.params.max_ihave_length :]
            for peer in cands[:n]:
                self._pending(peer).ihave.setdefault(topic, []).extend(recent)

    def _shift_cache(self, now: float) -> None:
        self.mcache_windows.appendleft([])
        while len(self.mcache_windows) > self.params.mcache_len:
            for mid in self.mcache_windows.pop():
                self.mcache.pop(mid, None)
                self.transmissions.pop(mid, None)
        while self.seen:
            mid, entry = next(iter(self.seen.items()))
            if entry.expire > now:
                break
            del self.seen[mid]
        for key in [k for k, until in self.backoff.items() if until <= now]:
            del self.backoff[key]

    # ------------------------------------------------------------ outbound

    def has_outgoing(self) -> list[bytes]:
        """The peers that have something queued."""
        return list(self._out)

    def take_for(self, peer: bytes) -> list[RPC]:
        """What is queued for `peer`, as RPCs of at most
        `max_messages_per_rpc` messages each (the first carries the control)."""
        p = self._out.pop(peer, None)
        if p is None or peer not in self.peers:
            return []
        limit = self.params.max_messages_per_rpc
        out = [
            RPC(
                subscriptions=tuple(p.subscriptions),
                messages=tuple(p.messages[:limit]),
                ihave=tuple(IHave(topic=t, ids=tuple(ids[-5000:])) for t, ids in p.ihave.items()),
                iwant=tuple(p.iwant[:5000]),
                graft=tuple(dict.fromkeys(p.graft)),
                prune=tuple(p.prune),
            )
        ]
        for start in range(limit, len(p.messages), limit):
            out.append(
                RPC(
                    subscriptions=(),
                    messages=tuple(p.messages[start : start + limit]),
                    ihave=(),
                    iwant=(),
                    graft=(),
                    prune=(),
                )
            )
        return [rpc for rpc in out if not rpc.is_empty()]

    def take_outgoing(self) -> list[tuple[bytes, RPC]]:
        """Everything queued, for every peer."""
        return [(peer, rpc) for peer in self.has_outgoing() for rpc in self.take_for(peer)]
