"""Node processes in network namespaces, driven over their stdin/stdout."""

from __future__ import annotations

import itertools
import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


class NodeProc:
    """`ip netns exec NS python -m tests.nat.node_main CONFIG`."""

    def __init__(self, name: str, ns: str | None, config: dict[str, Any], tmp: Path) -> None:
        self.name = name
        path = tmp / f"{name}.json"
        config = {"data_dir": str(tmp / name), **config}
        path.write_text(json.dumps(config))
        prefix = ["ip", "netns", "exec", ns] if ns else []
        self.stderr = (tmp / f"{name}.log").open("w")
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "tests.nat.node_main", str(path)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.log: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        threading.Thread(target=self._read, daemon=True).start()
        started = self.wait_event("started", timeout=30)
        self.port: int = started["port"]
        self.peer_id: str = started["peer_id"]

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except json.JSONDecodeError:
                continue

    def wait_event(self, name: str, timeout: float = 20, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.name}: no {name} event {match} in {timeout} s")
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                continue
            self.log.append(ev)
            if ev.get("event") == name and all(ev.get(k) == v for k, v in match.items()):
                return ev

    def send(self, cmd: str, **args: Any) -> int:
        """Sends a command without waiting; `reply(id)` collects the answer."""
        n = next(self._ids)
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"id": n, "cmd": cmd, **args}) + "\n")
        self.proc.stdin.flush()
        return n

    def cmd(self, cmd: str, timeout: float = 30, **args: Any) -> dict[str, Any]:
        return self.reply(self.send(cmd, **args), cmd, timeout)

    def reply(self, n: int, cmd: str = "", timeout: float = 30) -> dict[str, Any]:
        reply = self.wait_event("reply", timeout=timeout, id=n)
        if not reply["ok"]:
            raise RuntimeError(f"{self.name} {cmd}: {reply['error']}\n{reply.get('trace', '')}")
        return reply

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.stderr):
            if f is not None and not f.closed:
                f.close()
