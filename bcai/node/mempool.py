"""The mempool: valid transactions waiting for a block.

- Per sender, transactions are kept by nonce; only a contiguous run from the
  account's nonce is executable, later ones wait (at most `max_per_sender`).
- Priority is the effective tip per byte at the current base fee.
- A transaction with the same sender and nonce replaces the old one only if
  both its max fee and its tip are at least 10% higher.
- When the pool is over `max_bytes`, the cheapest *last* transaction of some
  sender is evicted (evicting from the middle would strand later nonces), and
  only for a transaction that pays more.
- `on_new_head` re-validates against the new state; `readd` takes back the
  transactions of blocks orphaned by a reorg.

Every rejection raises MempoolReject with a reason code. No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bcai.chain import (
    Account,
    InvalidTransaction,
    MatMulPost,
    Transaction,
    Unstake,
    effective_tip,
)
from bcai.chain._transition import check_transaction_static
from bcai.crypto import verify_batch
from bcai.errors import BcaiError

AccountView = Callable[[bytes], Account]
REPLACE_BUMP_PERCENT = 10


class MempoolReject(BcaiError):
    """Codes: ``mempool-duplicate``, ``mempool-replacement-underpriced``,
    ``mempool-nonce-gap``, ``mempool-sender-full``, ``mempool-full``,
    ``mempool-fee-too-low``, and the ``tx-*`` codes of the chain rules."""


@dataclass(frozen=True, slots=True)
class Entry:
    tx: Transaction
    tx_id: bytes
    sender: bytes
    weight: int

    @property
    def nonce(self) -> int:
        return self.tx.body.nonce

    def cost(self, base_fee: int) -> int:
        """The most this transaction can take from the sender's balance."""
        body = self.tx.body
        fee = self.weight * (base_fee + effective_tip(body.max_fee, body.tip, base_fee))
        return fee if isinstance(body.payload, Unstake) else fee + body.payload.amount

    def priority(self, base_fee: int) -> int:
        body = self.tx.body
        return effective_tip(body.max_fee, body.tip, base_fee) if body.max_fee >= base_fee else -1


class Mempool:
    def __init__(
        self,
        chain_id: int,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        max_per_sender: int = 64,
    ) -> None:
        self.chain_id = chain_id
        self.max_bytes = max_bytes
        self.max_per_sender = max_per_sender
        self.by_id: dict[bytes, Entry] = {}
        self.by_sender: dict[bytes, dict[int, Entry]] = {}
        self.bytes = 0

    def __len__(self) -> int:
        return len(self.by_id)

    def __contains__(self, tx_id: bytes) -> bool:
        return tx_id in self.by_id

    # ------------------------------------------------------------ admission

    def add(
        self, tx: Transaction, account: AccountView, base_fee: int, height: int | None = None
    ) -> Entry:
        """Admits `tx` or raises MempoolReject with the reason; `height`, the
        head's, refuses a MatMul job whose deadline the next block already
        passes (`tx-job-deadline`)."""
        entry = self._screen(tx, account, base_fee, height)
        if not verify_batch([(tx.body.sender, tx.signing_message(), tx.signature)])[0]:
            raise MempoolReject("tx-bad-signature", "the signature does not verify")
        return self._admit(entry, account, base_fee)

    def add_many(
        self, txs: Iterable[Transaction], account: AccountView, base_fee: int
    ) -> list[MempoolReject | None]:
        """Admits many transactions with one batch signature check; returns
        None or the rejection for each."""
        txs = list(txs)
        flags = verify_batch([(t.body.sender, t.signing_message(), t.signature) for t in txs])
        results: list[MempoolReject | None] = []
        for tx, ok in zip(txs, flags, strict=True):
            try:
                if not ok:
                    raise MempoolReject("tx-bad-signature", "the signature does not verify")
                self._admit(self._screen(tx, account, base_fee), account, base_fee)
                results.append(None)
            except MempoolReject as err:
                results.append(err)
        return results

    def _screen(
        self, tx: Transaction, account: AccountView, base_fee: int, height: int | None = None
    ) -> Entry:
        tx_id = tx.tx_id()
        if tx_id in self.by_id:
            raise MempoolReject("mempool-duplicate", "already in the mempool")
        try:
            check_transaction_static(tx, self.chain_id)
        except InvalidTransaction as err:
            raise MempoolReject(err.code, err.message) from err
        payload = tx.body.payload
        if (
            height is not None
            and isinstance(payload, MatMulPost)
            and payload.deadline <= height + 1
        ):
            raise MempoolReject(
                "tx-job-deadline",
                f"deadline {payload.deadline} is not after the next block's height {height + 1}",
            )
        if tx.body.max_fee < base_fee:
            raise MempoolReject(
                "mempool-fee-too-low", f"max fee {tx.body.max_fee} < base fee {base_fee}"
            )
        entry = Entry(tx=tx, tx_id=tx_id, sender=tx.sender_address, weight=tx.weight())
        nonce = account(entry.sender).nonce
        if entry.nonce < nonce:
            raise MempoolReject("tx-nonce-too-low", f"nonce {entry.nonce} < {nonce}")
        if entry.nonce >= nonce + self.max_per_sender:
            raise MempoolReject(
                "mempool-nonce-gap", f"nonce {entry.nonce} is too far ahead of {nonce}"
            )
        return entry

    def _admit(self, entry: Entry, account: AccountView, base_fee: int) -> Entry:
        queue = self.by_sender.get(entry.sender, {})
        old = queue.get(entry.nonce)
        if old is not None:
            self._check_replacement(old, entry)
        elif len(queue) >= self.max_per_sender:
            raise MempoolReject("mempool-sender-full", f"{len(queue)} pending from this sender")
        acct = account(entry.sender)
        committed = sum(
            e.cost(base_fee) for n, e in queue.items() if n != entry.nonce and n < entry.nonce
        )
        if committed + entry.cost(base_fee) > acct.balance:
            raise MempoolReject(
                "tx-insufficient-funds", "balance does not cover this and earlier pending txs"
            )
        self._make_room(entry, base_fee, replacing=old)
        if old is not None:
            self._remove(old)
        self._insert(entry)
        return entry

    @staticmethod
    def _check_replacement(old: Entry, new: Entry) -> None:
        def bumped(a: int, b: int) -> bool:
            return b * 100 >= a * (100 + REPLACE_BUMP_PERCENT)

        if not (
            bumped(old.tx.body.max_fee, new.tx.body.max_fee)
            and bumped(old.tx.body.tip, new.tx.body.tip)
        ):
            raise MempoolReject(
                "mempool-replacement-underpriced",
                f"a replacement needs max fee and tip {REPLACE_BUMP_PERCENT}% above the old",
            )

    def _make_room(self, entry: Entry, base_fee: int, replacing: Entry | None) -> None:
        freed = replacing.weight if replacing else 0
        while self.bytes - freed + entry.weight > self.max_bytes:
            victim = self._cheapest_tail(base_fee, exclude=entry.sender)
            if victim is None or victim.priority(base_fee) >= entry.priority(base_fee):
                raise MempoolReject("mempool-full", "the pool is full of better-paying txs")
            self._remove(victim)

    def _cheapest_tail(self, base_fee: int, exclude: bytes) -> Entry | None:
        tails = [q[max(q)] for s, q in self.by_sender.items() if q and s != exclude]
        return min(tails, key=lambda e: (e.priority(base_fee), e.tx_id), default=None)

    def _insert(self, entry: Entry) -> None:
        self.by_id[entry.tx_id] = entry
        self.by_sender.setdefault(entry.sender, {})[entry.nonce] = entry
        self.bytes += entry.weight

    def _remove(self, entry: Entry) -> None:
        del self.by_id[entry.tx_id]
        queue = self.by_sender[entry.sender]
        del queue[entry.nonce]
        if not queue:
            del self.by_sender[entry.sender]
        self.bytes -= entry.weight

    # ------------------------------------------------------------ blocks

    def select(
        self, account: AccountView, base_fee: int, max_bytes: int, max_txs: int
    ) -> list[Transaction]:
        """Transactions for the next block: executable runs in nonce order,
        the best-paying next transaction first, within the limits."""
        cursors = {s: account(s).nonce for s in self.by_sender}
        chosen: list[Transaction] = []
        size = 0
        while len(chosen) < max_txs:
            ready = [self.by_sender[s][n] for s, n in cursors.items() if n in self.by_sender[s]]
            ready = [e for e in ready if e.priority(base_fee) >= 0 and size + e.weight <= max_bytes]
            if not ready:
                break
            best = max(ready, key=lambda e: (e.priority(base_fee), e.tx_id))
            chosen.append(best.tx)
            size += best.weight
            cursors[best.sender] += 1
        return chosen

    def remove(self, tx_id: bytes) -> bool:
        """Drops one transaction (one a block could not apply); True if it was here."""
        entry = self.by_id.get(tx_id)
        if entry is None:
            return False
        self._remove(entry)
        return True

    def pending(self, limit: int) -> list[Entry]:
        """Up to `limit` entries, by sender and nonce (for the API)."""
        out: list[Entry] = []
        for queue in self.by_sender.values():
            for nonce in sorted(queue):
                if len(out) >= limit:
                    return out
                out.append(queue[nonce])
        return out

    def on_new_head(self, account: AccountView, base_fee: int) -> int:
        """Drops what the new head made invalid (mined or stale nonces, or
        no longer affordable); returns how many were dropped."""
        dropped = 0
        for sender in list(self.by_sender):
            acct = account(sender)
            spent = 0
            for nonce in sorted(self.by_sender[sender]):
                entry = self.by_sender[sender][nonce]
                spent += entry.cost(base_fee) if nonce >= acct.nonce else 0
                if nonce < acct.nonce or spent > acct.balance:
                    self._remove(entry)
                    dropped += 1
                if sender not in self.by_sender:
                    break
        return dropped

    def readd(self, txs: Iterable[Transaction], account: AccountView, base_fee: int) -> int:
        """Takes back transactions of orphaned blocks; returns how many stayed."""
        return sum(r is None for r in self.add_many(txs, account, base_fee))
