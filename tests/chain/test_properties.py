"""Properties over random transaction streams: the supply invariant holds
after every block and no balance goes negative; reorging to a branch gives
the same state root as importing that branch from genesis; encodings of
chain objects round-trip."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bcai import chain
from bcai.chain import COIN, Block, Burn, InvalidBlock, Stake, Transfer, Unstake
from tests.chain.builder import Chain, make_genesis, make_keys

KEYS = make_keys(5, salt=9)
GENESIS = make_genesis(KEYS[:4], balance=100 * COIN)

action = st.tuples(
    st.sampled_from(["transfer", "stake", "unstake", "burn"]),
    st.integers(0, 3),
    st.integers(0, 4),
    st.integers(1, 60 * COIN),
)


def apply_actions(c: Chain, actions: list[tuple[str, int, int, int]], producer: int) -> None:
    """Builds one block from the actions that are valid in order (the others
    are dropped, as a producer would)."""
    txs = []
    for kind, frm, to, amount in actions:
        key = KEYS[frm]
        nonce = c.nonce(key) + sum(1 for t in txs if t.body.sender == key.public_key)
        payload = {
            "transfer": Transfer(to=KEYS[to].address, amount=amount),
            "stake": Stake(amount=amount),
            "unstake": Unstake(amount=amount),
            "burn": Burn(amount=amount),
        }[kind]
        tx = c.tx(key, payload, nonce=nonce, tip=amount % 3)
        try:
            c.build([*txs, tx], KEYS[producer])
        except InvalidBlock:
            continue
        txs.append(tx)
    c.extend(txs, KEYS[producer])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.lists(action, max_size=6), st.integers(0, 4)), max_size=8))
def test_supply_invariant_and_no_negative_balance(blocks: list) -> None:  # type: ignore[type-arg]
    c = Chain.start(GENESIS)
    assert c.state.supply_invariant_holds()
    for actions, producer in blocks:
        apply_actions(c, actions, producer)
        assert c.state.supply_invariant_holds()
        assert all(a.balance >= 0 for a in c.state.accounts.values())
        assert all(v > 0 for v in c.state.stakes.values())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.lists(action, max_size=4), min_size=1, max_size=5),
    st.lists(st.lists(action, max_size=4), min_size=1, max_size=5),
    st.integers(0, 3),
)
def test_reorg_equals_import_from_genesis(a: list, b: list, fork: int) -> None:  # type: ignore[type-arg]
    c = Chain.start(GENESIS)
    for actions in a:
        apply_actions(c, actions, 4)
    fork = min(fork, c.head.height)
    c.rewind(fork)
    for actions in b:
        apply_actions(c, actions, 0)
    # the same blocks imported on a fresh chain from genesis
    fresh = Chain.start(GENESIS)
    for block in c.blocks:
        fresh.import_block(block)
    assert fresh.state.root == c.state.root
    assert fresh.state.accounts == c.state.accounts
    assert fresh.state.unbonding == c.state.unbonding
    assert fresh.state.supply == c.state.supply
    # and rewinding everything gives back genesis exactly
    genesis_root = chain.genesis_state(GENESIS).root
    c.rewind(0)
    assert c.state.root == genesis_root
    assert c.state.supply_invariant_holds()


def test_chain_objects_round_trip() -> None:
    c = Chain.start(GENESIS)
    apply_actions(c, [("transfer", 0, 1, COIN), ("stake", 1, 0, COIN)], 2)
    block = c.blocks[-1]
    assert Block.decode(block.encode()) == block
    assert chain.Genesis.decode(GENESIS.encode()) == GENESIS
    for tx in block.txs:
        assert chain.Transaction.decode(tx.encode()) == tx
    assert chain.Header.decode(block.header.encode()).block_hash() == block.block_hash()
