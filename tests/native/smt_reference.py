"""A pure-Python sparse Merkle tree, written from docs/consensus.md alone: the
independent model the native tree is tested against, and the baseline its
benchmark is measured against."""

from __future__ import annotations

import blake3 as blake3_pkg

EMPTY = bytes(32)
LEAF_KEY = blake3_pkg.blake3(b"", derive_key_context="bcai 2026-11 smt leaf").digest()
NODE_KEY = blake3_pkg.blake3(b"", derive_key_context="bcai 2026-11 smt node").digest()

Node = tuple[str, bytes, bytes]  # ("leaf", key, value) or ("node", left, right)


def leaf_hash(key: bytes, value: bytes) -> bytes:
    return blake3_pkg.blake3(key + value, key=LEAF_KEY).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return blake3_pkg.blake3(left + right, key=NODE_KEY).digest()


def bit(key: bytes, depth: int) -> int:
    return key[depth // 8] >> (7 - depth % 8) & 1


class ReferenceTree:
    def __init__(self) -> None:
        self.nodes: dict[bytes, Node] = {}

    def _put(self, node: Node) -> bytes:
        h = leaf_hash(node[1], node[2]) if node[0] == "leaf" else node_hash(node[1], node[2])
        self.nodes[h] = node
        return h

    def _join(self, left: bytes, right: bytes) -> bytes:
        def is_leaf(h: bytes) -> bool:
            return h in self.nodes and self.nodes[h][0] == "leaf"

        if left == EMPTY and (right == EMPTY or is_leaf(right)):
            return right
        if right == EMPTY and is_leaf(left):
            return left
        return self._put(("node", left, right))

    def _build(self, depth: int, leaves: list[tuple[bytes, bytes]]) -> bytes:
        if not leaves:
            return EMPTY
        if len(leaves) == 1:
            return self._put(("leaf", *leaves[0]))
        left = [x for x in leaves if not bit(x[0], depth)]
        right = [x for x in leaves if bit(x[0], depth)]
        return self._join(self._build(depth + 1, left), self._build(depth + 1, right))

    def _apply(self, root: bytes, depth: int, updates: list[tuple[bytes, bytes | None]]) -> bytes:
        if not updates:
            return root
        if root == EMPTY:
            return self._build(depth, [(k, v) for k, v in updates if v is not None])
        node = self.nodes[root]
        if node[0] == "leaf":
            merged = {node[1]: node[2]}
            for k, v in updates:
                merged[k] = v  # type: ignore[assignment]
            leaves = sorted((k, v) for k, v in merged.items() if v is not None)
            return self._build(depth, leaves)
        left = [u for u in updates if not bit(u[0], depth)]
        right = [u for u in updates if bit(u[0], depth)]
        return self._join(
            self._apply(node[1], depth + 1, left), self._apply(node[2], depth + 1, right)
        )

    def update(self, root: bytes, updates: list[tuple[bytes, bytes | None]]) -> bytes:
        return self._apply(root, 0, sorted(updates, key=lambda u: u[0]))

    def prove(self, root: bytes, key: bytes) -> tuple[list[bytes], tuple[bytes, bytes] | None]:
        siblings, h, depth = [], root, 0
        while h != EMPTY:
            node = self.nodes[h]
            if node[0] == "leaf":
                return siblings, (node[1], node[2])
            if bit(key, depth):
                siblings.append(node[1])
                h = node[2]
            else:
                siblings.append(node[2])
                h = node[1]
            depth += 1
        return siblings, None
