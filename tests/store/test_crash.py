"""Crash safety: a subprocess importing blocks (extensions and a reorg) is
killed with SIGKILL at random moments, 50 times; every restart must open a
consistent store whose recomputed state root matches its head."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bcai.chain import COIN, Transfer
from bcai.store import ChainStore
from tests.chain.builder import Chain, make_genesis, make_keys

KEYS = make_keys(8, salt=5)
GENESIS = make_genesis(KEYS[:6])
KILLS = 50


def build_blocks() -> list[bytes]:
    """60 blocks of transfers, then a heavier branch forking at height 30."""
    a = Chain.start(GENESIS)
    blocks = []
    for i in range(60):
        txs = [
            a.tx(KEYS[j], Transfer(to=KEYS[(j + 1) % 6].address, amount=COIN + i)) for j in range(6)
        ]
        blocks.append(a.extend(txs, KEYS[6]))
    b = Chain.start(GENESIS)
    for blk in blocks[:30]:
        b.import_block(blk)
    for i in range(40):
        tx = b.tx(KEYS[0], Transfer(to=KEYS[7].address, amount=i + 1))
        blocks.append(b.extend([tx], KEYS[7]))
    return [GENESIS.encode()] + [blk.encode() for blk in blocks]


@pytest.mark.slow
def test_sigkill_at_random_moments(tmp_path: Path, repo: Path) -> None:
    records = build_blocks()
    blocks_file = tmp_path / "blocks.bin"
    blocks_file.write_bytes(b"".join(len(r).to_bytes(4, "big") + r for r in records))
    data = tmp_path / "data"
    rng = random.Random(1234)
    env = {**os.environ, "PYTHONPATH": str(repo)}
    killed = completed = 0
    heights: list[int] = []
    while killed < KILLS:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.store.crash_worker", str(data), str(blocks_file)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=repo,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.25))
        proc.send_signal(signal.SIGKILL)
        rest = proc.communicate(timeout=60)[0]
        assert "invalid" not in rest
        if proc.returncode == -signal.SIGKILL and "done" not in rest:
            killed += 1
        else:
            completed += 1
        with ChainStore(data, GENESIS) as store:  # restart: consistent, whatever happened
            store.verify_consistency()
            heights.append(store.head.height)
            finished = store.head.height == 70
        if finished:
            shutil.rmtree(data)  # start over so later kills land mid-import again
    assert killed == KILLS
    assert len(set(heights)) > 10  # the kills landed at many different points
