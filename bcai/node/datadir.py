"""The node's data dir: what lives where, and who may use it.

    <data dir>/
      .bcai-datadir     marker: this directory belongs to a bcai node
      config.toml       the configuration (optional; `bcai config init`)
      genesis.json      the chain's genesis (config: node.genesis)
      node.lock         held (flock) by the running node; holds its pid
      node.json         the running node's endpoints (API, metrics, p2p), for the CLI
      keys/node.key     the node's network identity seed (hex, mode 0600)
      keys/producer.key the block producer's signing seed (hex, mode 0600)
      api.token         the API bearer token, when one is generated (mode 0600)
      chain/            the LMDB chain store
      logs/node.log     JSON logs

A directory that exists, holds more than config.toml and genesis.json and
has no marker is someone else's:
the node refuses it rather than write into it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from pathlib import Path
from typing import Any, TextIO

from bcai.crypto import PrivateKey
from bcai.errors import BcaiError

MARKER = ".bcai-datadir"
OPERATOR_FILES = {"config.toml", "genesis.json"}  # may be put in place before the first run


class DataDirError(BcaiError):
    """Codes: ``datadir-foreign``, ``datadir-locked``, ``datadir-bad-key``."""


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class DataDir:
    def __init__(self, path: Path) -> None:
        self.path = path.expanduser()
        self._lock: TextIO | None = None

    @property
    def chain(self) -> Path:
        return self.path / "chain"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def info_file(self) -> Path:
        return self.path / "node.json"

    def prepare(self) -> None:
        """Creates the layout, or checks that an existing dir is a node's.

        Raises:
            DataDirError: ``datadir-foreign`` for a non-empty dir without the marker.
        """
        unmarked = self.path.exists() and not (self.path / MARKER).exists()
        if unmarked and (
            not self.path.is_dir() or any(p.name not in OPERATOR_FILES for p in self.path.iterdir())
        ):
            raise DataDirError(
                "datadir-foreign",
                f"{self.path} exists and is not a bcai data dir (no {MARKER}); "
                "pass an empty or new directory with --data-dir",
            )
        for sub in (self.path, self.path / "keys", self.logs):
            sub.mkdir(parents=True, exist_ok=True, mode=0o700)
        marker = self.path / MARKER
        if not marker.exists():
            marker.write_text("bcai data dir, format 1\n")

    def lock(self) -> None:
        """Takes the data dir for this process (released on exit or `unlock`).

        Raises:
            DataDirError: ``datadir-locked`` if another process holds it.
        """
        f = (self.path / "node.lock").open("a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            f.seek(0)
            pid = f.read().strip() or "?"
            f.close()
            raise DataDirError(
                "datadir-locked",
                f"{self.path} is in use by another bcai node (pid {pid}); stop it, "
                "or give this node its own --data-dir",
            ) from err
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._lock = f

    def unlock(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.info_file.unlink()
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def key(self, name: str) -> PrivateKey:
        """The seed in ``keys/<name>.key``, created on first use."""
        path = self.path / "keys" / f"{name}.key"
        if not path.exists():
            _write_private(path, PrivateKey.generate().seed_bytes().hex() + "\n")
        try:
            return PrivateKey(bytes.fromhex(path.read_text().strip()))
        except ValueError as err:
            raise DataDirError(
                "datadir-bad-key", f"{path} does not hold a 32-byte hex seed"
            ) from err

    def api_token(self) -> str:
        """The generated API token (``api.token``), created on first use."""
        path = self.path / "api.token"
        if not path.exists():
            _write_private(path, secrets.token_urlsafe(32) + "\n")
        return path.read_text().strip()

    def write_info(self, info: dict[str, Any]) -> None:
        _write_private(self.info_file, json.dumps(info, indent=2) + "\n")

    def read_info(self) -> dict[str, Any] | None:
        """The running node's endpoints, or None if no node runs here."""
        try:
            doc = json.loads(self.info_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return doc if isinstance(doc, dict) else None
