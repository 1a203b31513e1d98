"""The native sparse Merkle tree against the pure-Python model: same roots for
random update streams, order independence, proofs of presence and absence,
persistence of old roots, and argument checks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bcai_native
from tests.native import smt_reference as ref

EMPTY = bytes(32)


def key(i: int) -> bytes:
    return bcai_native.blake3_hash(i.to_bytes(8, "big"))


def value(i: int) -> bytes:
    return bcai_native.blake3_hash(b"v" + i.to_bytes(8, "big"))


def test_hashes_match_the_documented_construction() -> None:
    assert bcai_native.smt_leaf_hash(key(1), value(1)) == ref.leaf_hash(key(1), value(1))
    assert bcai_native.smt_node_hash(key(1), value(1)) == ref.node_hash(key(1), value(1))
    tree = bcai_native.SparseMerkleTree()
    one = tree.update(EMPTY, [(key(1), value(1))])
    assert one == ref.leaf_hash(key(1), value(1))  # a lone leaf is the root


updates_st = st.lists(
    st.lists(st.tuples(st.integers(0, 60), st.none() | st.integers(0, 5)), max_size=25), max_size=6
)


@settings(max_examples=60, deadline=None)
@given(updates_st)
def test_random_streams_match_the_reference(batches: list[list[tuple[int, int | None]]]) -> None:
    tree, model = bcai_native.SparseMerkleTree(), ref.ReferenceTree()
    root = model_root = EMPTY
    state: dict[int, int] = {}
    for batch in batches:
        dedup = dict(batch)
        ups = [(key(k), None if v is None else value(v)) for k, v in dedup.items()]
        root = tree.update(root, ups)
        model_root = model.update(model_root, ups)
        assert root == model_root
        for k, v in dedup.items():
            if v is None:
                state.pop(k, None)
            else:
                state[k] = v
        # the root depends only on the final contents
        fresh = bcai_native.SparseMerkleTree().update(
            EMPTY, [(key(k), value(v)) for k, v in state.items()]
        )
        assert fresh == root
    for k in range(61):
        siblings, terminal = tree.prove(root, key(k))
        assert (siblings, terminal) == model.prove(root, key(k))
        want = value(state[k]) if k in state else None
        assert tree.get(root, key(k)) == want
        assert bcai_native.smt_verify(root, key(k), want, siblings, terminal)
        wrong = value(99) if want is None else None
        assert not bcai_native.smt_verify(root, key(k), wrong, siblings, terminal)


def test_old_roots_stay_readable_and_nodes_persist() -> None:
    tree = bcai_native.SparseMerkleTree()
    r1 = tree.update(EMPTY, [(key(i), value(i)) for i in range(100)])
    r2 = tree.update(r1, [(key(5), value(500)), (key(200), value(200))])
    assert tree.get(r1, key(5)) == value(5)
    assert tree.get(r2, key(5)) == value(500)
    nodes = tree.drain_new_nodes()
    assert tree.drain_new_nodes() == []
    assert all(len(h) == 32 and len(enc) == 65 for h, enc in nodes)
    copy = bcai_native.SparseMerkleTree()
    copy.load_nodes([enc for _, enc in nodes])
    assert copy.get(r2, key(200)) == value(200)
    assert copy.get(r1, key(99)) == value(99)


def test_forged_proofs_fail() -> None:
    tree = bcai_native.SparseMerkleTree()
    root = tree.update(EMPTY, [(key(i), value(i)) for i in range(50)])
    siblings, terminal = tree.prove(root, key(3))
    assert bcai_native.smt_verify(root, key(3), value(3), siblings, terminal)
    assert not bcai_native.smt_verify(root, key(3), value(3), siblings[:-1], terminal)
    bad = [siblings[0][:31] + bytes([siblings[0][31] ^ 1]), *siblings[1:]]
    assert not bcai_native.smt_verify(root, key(3), value(3), bad, terminal)
    # a leaf that is not on the key's path cannot prove absence
    s4, t4 = tree.prove(root, key(4))
    assert not bcai_native.smt_verify(root, key(3), None, s4, t4)
    assert not bcai_native.smt_verify(root, key(3), None, [root] * 300, None)


def test_bad_arguments() -> None:
    tree = bcai_native.SparseMerkleTree()
    with pytest.raises(ValueError, match="appears twice"):
        tree.update(EMPTY, [(key(1), value(1)), (key(1), None)])
    with pytest.raises(LookupError, match="not loaded"):
        tree.get(value(1), key(1))
    with pytest.raises(ValueError, match=r"updates\[0\].key: expected 32 bytes"):
        tree.update(EMPTY, [(b"short", value(1))])
    with pytest.raises(ValueError, match="expected a"):
        tree.update(EMPTY, [[key(1), value(1)]])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="not a 65-byte tree node"):
        tree.load_nodes([b"\x05" * 65])
