"""Imports blocks from a file into a store until killed (for test_crash.py).

Usage: python -m tests.store.crash_worker DATA_DIR BLOCKS_FILE
The file holds the genesis, then blocks, each as a u32 length + encoding.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bcai.chain import Block, Genesis, InvalidBlock
from bcai.store import ChainStore


def read_records(path: Path) -> list[bytes]:
    data, out, pos = path.read_bytes(), [], 0
    while pos < len(data):
        n = int.from_bytes(data[pos : pos + 4], "big")
        out.append(data[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return out


def main() -> int:
    records = read_records(Path(sys.argv[2]))
    genesis = Genesis.decode(records[0])
    blocks = [Block.decode(r) for r in records[1:]]
    store = ChainStore(sys.argv[1], genesis)
    print("ready", flush=True)
    for block in blocks:
        try:
            store.import_block(block, 2**62)
        except InvalidBlock as err:
            print(f"invalid {err.code}", flush=True)
            return 1
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
