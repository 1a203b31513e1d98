"""Peer records kept with the chain: bans with expiry (the `peers` database).

Keys are `ban:` ‖ IP; values the banned-until time in seconds since the
epoch, as text. A longer ban replaces a shorter one; loading deletes the
expired ones. The key `addrbook` holds the encoded address book.
"""

from __future__ import annotations

from typing import Any

from bcai.store._store import ChainStore

BAN_PREFIX = b"ban:"


def save_ban(store: ChainStore, ip: str, until_s: float) -> None:
    """Remembers that `ip` is banned until `until_s`."""
    key = BAN_PREFIX + ip.encode()

    def write(txn: Any) -> None:
        old = txn.get(key, db=store.db["peers"])
        if old is None or float(old.decode()) < until_s:
            txn.put(key, repr(float(until_s)).encode(), db=store.db["peers"])

    store._run_write(write)


def load_bans(store: ChainStore, now_s: float) -> dict[str, float]:
    """Bans still in force at `now_s` (IP -> until); expired ones are deleted."""
    bans: dict[str, float] = {}
    expired: list[bytes] = []
    with store.env.begin() as txn:
        for k, v in txn.cursor(db=store.db["peers"]):
            key = bytes(k)
            if not key.startswith(BAN_PREFIX):
                continue
            until = float(bytes(v).decode())
            if until > now_s:
                bans[key[len(BAN_PREFIX) :].decode()] = until
            else:
                expired.append(key)

    def delete(txn: Any) -> None:
        for key in expired:
            txn.delete(key, db=store.db["peers"])

    if expired:
        store._run_write(delete)
    return bans


ADDRBOOK_KEY = b"addrbook"


def save_addrbook(store: ChainStore, data: bytes) -> None:
    """Keeps the encoded address book (bcai.net's AddrMan)."""

    def write(txn: Any) -> None:
        txn.put(ADDRBOOK_KEY, data, db=store.db["peers"])

    store._run_write(write)


def load_addrbook(store: ChainStore) -> bytes | None:
    with store.env.begin() as txn:
        raw = txn.get(ADDRBOOK_KEY, db=store.db["peers"])
    return None if raw is None else bytes(raw)
